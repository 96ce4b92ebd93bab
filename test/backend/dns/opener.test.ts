import { describe, expect, it } from 'vitest';
import { Opener } from '../../../src/backend/dns/opener.js';
import type { NftElement } from '../../../src/backend/nft/elements.js';

const el = (n: number): NftElement => ({ set: 'dns_p16', key: `0x00000001 . 203.0.113.${n} . tcp . 443` });
const reason = (n: number) => ({ address: `203.0.113.${n}`, names: ['pypi.org'] });

function recorder(fail?: (line: string) => boolean) {
  const lines: string[] = [];
  const run = async (line: string) => {
    lines.push(line);
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (fail?.(line) === true) throw new Error('nft refused');
  };
  return { lines, run };
}

describe('Opener', () => {
  it('opens for max(TTL, floor) + grace seconds, timeout and expiry both set', async () => {
    const { lines, run } = recorder();
    const opener = new Opener({ run, floorSeconds: 60, graceSeconds: 30 });
    await opener.open('secure/52:54:00:00:00:01', [el(1)], 10, reason(1));
    await opener.open('secure/52:54:00:00:00:01', [el(2)], 300, reason(2));
    expect(lines).toEqual([
      'add element inet ticrypt dns_p16 { 0x00000001 . 203.0.113.1 . tcp . 443 timeout 90s expires 90s }',
      'add element inet ticrypt dns_p16 { 0x00000001 . 203.0.113.2 . tcp . 443 timeout 330s expires 330s }',
    ]);
  });

  it('puts what is asked for while a transaction runs into the next one', async () => {
    const { lines, run } = recorder();
    const opener = new Opener({ run });
    const opens = Array.from({ length: 50 }, (_, i) => opener.open(`secure/nic${i % 5}`, [el(i)], 60, reason(i)));
    await Promise.all(opens);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.match(/timeout/g)).toHaveLength(50);
    expect(opener.stats).toMatchObject({ opened: 50, transactions: 1 });
  });

  it('writes nothing for an element open long enough, and refreshes one that is not', async () => {
    let now = 0;
    const { lines, run } = recorder();
    const opener = new Opener({ run, floorSeconds: 60, graceSeconds: 60, now: () => now });
    await opener.open('n', [el(1)], 60, reason(1)); // open for 120 s
    now += 20_000; // 100 s left >= 60 + 30
    await opener.open('n', [el(1)], 60, reason(1));
    expect(lines).toHaveLength(1);
    now += 15_000; // 85 s left < 90
    await opener.open('n', [el(1)], 60, reason(1));
    expect(lines).toHaveLength(2);
    expect(opener.stats).toMatchObject({ opened: 2, skipped: 1 });
  });

  it('lets a second answer for an element in flight wait for that same transaction', async () => {
    const { lines, run } = recorder();
    const opener = new Opener({ run });
    await Promise.all([opener.open('n', [el(1)], 60, reason(1)), opener.open('n', [el(1)], 60, reason(1))]);
    expect(lines).toHaveLength(1);
  });

  it('closes after the opens asked for before, add-then-delete, and only what it opened', async () => {
    const { lines, run } = recorder();
    const opener = new Opener({ run });
    const opened = opener.open('a', [el(1), el(2)], 60, reason(1));
    const closed = opener.retain('a', (record) => record.element.key.includes('203.0.113.2 '));
    await Promise.all([opened, closed]);
    expect(lines).toEqual([
      'add element inet ticrypt dns_p16 { 0x00000001 . 203.0.113.1 . tcp . 443 timeout 120s expires 120s, 0x00000001 . 203.0.113.2 . tcp . 443 timeout 120s expires 120s }; add element inet ticrypt dns_p16 { 0x00000001 . 203.0.113.1 . tcp . 443 timeout 1s }; delete element inet ticrypt dns_p16 { 0x00000001 . 203.0.113.1 . tcp . 443 }',
    ]);
    expect(opener.size).toBe(1);
    await opener.close('a');
    await opener.close('a');
    expect(lines).toHaveLength(2);
    expect(opener.size).toBe(0);
  });

  it('fails every answer of a refused transaction and forgets what it would have opened', async () => {
    const { lines, run } = recorder((line) => line.includes('203.0.113.66'));
    const opener = new Opener({ run });
    const results = await Promise.allSettled([
      opener.open('n', [el(66)], 60, reason(66)),
      opener.open('m', [el(7)], 60, reason(7)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(opener.size).toBe(0);
    await opener.open('m', [el(7)], 60, reason(7));
    expect(lines).toHaveLength(2);
    expect(opener.stats).toMatchObject({ failures: 1, transactions: 2 });
  });

  it('forgets everything after a rebuild, so the next answer opens again', async () => {
    const { lines, run } = recorder();
    const opener = new Opener({ run });
    await opener.open('n', [el(1)], 60, reason(1));
    opener.forget();
    await opener.open('n', [el(1)], 60, reason(1));
    expect(lines).toHaveLength(2);
  });

  it('refuses to open while suspended (the table was lost), forgetting what it had opened; a rebuild resumes', async () => {
    const { lines, run } = recorder();
    const opener = new Opener({ run });
    await opener.open('n', [el(1)], 60, reason(1));
    opener.suspend();
    expect(opener.size).toBe(0);
    await expect(opener.open('n', [el(1)], 60, reason(1))).rejects.toMatchObject({ code: 'E_FIREWALL_UNAVAILABLE' });
    await expect(opener.open('m', [el(2)], 60, reason(2))).rejects.toMatchObject({ code: 'E_FIREWALL_UNAVAILABLE' });
    expect(lines).toHaveLength(1);
    // The rebuild committed: the same answer writes its element again (the rebuild emptied the set).
    opener.forget();
    await opener.open('n', [el(1)], 60, reason(1));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('203.0.113.1');
  });

  it('sweeps records that expired', async () => {
    let now = 0;
    const opener = new Opener({ run: recorder().run, now: () => now });
    await opener.open('n', [el(1)], 60, reason(1));
    now += 121_000;
    opener.sweep();
    expect(opener.size).toBe(0);
  });
});
