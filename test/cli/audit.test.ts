import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../src/backend/audit/day-store.js';
import { clock, flow, tempStore, vmUuid } from '../backend/audit/support.js';
import { cli } from '../support/cli.js';

let temp: Awaited<ReturnType<typeof tempStore>>;
let head = '';
beforeAll(async () => {
  temp = await tempStore();
  const now = new Date();
  const end = `${now.toISOString().slice(0, 19)}.000000Z`;
  const store = await AuditStore.open({ settings: temp.settings, now: clock(now.toISOString()).now });
  await store.append([flow(1, end), flow(2, end), flow(1, end, 5)]);
  await store.append([
    {
      v: 1,
      kind: 'refused',
      vm: { ...flow(1).vm },
      proto: 'udp',
      src: { ip: '192.168.129.10', port: 5353 },
      dst: { ip: '203.0.113.9', port: 53 },
      start: end,
      end,
      bytes: { out: 60, in: 0 },
      packets: { out: 1, in: 0 },
      reason: 'not-allowed',
    },
  ]);
  head = `${store.head.seq}:${store.head.hash}`;
  await store.close();
});
afterAll(() => temp.cleanup());

describe('ticrypt-net audit', () => {
  it("query --vm prints the VM's records as a table", async () => {
    const { code, stdout, stderr } = await cli('audit', 'query', '--dir', temp.dir, '--vm', vmUuid(1), '--since', '1h');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^END \(UTC\)\s+KIND\s+VM\s+PROTO\s+SOURCE\s+DESTINATION\s+BYTES OUT\s+BYTES IN\s+WHY$/);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(
      /flow\s+vm-1\s+tcp\s+192\.168\.129\.10:40001\s+198\.51\.100\.11:443\s+1000\s+10000\s+allow 0: 198/,
    );
    expect(lines[3]).toMatch(/refused\s+vm-1\s+udp\s+.*203\.0\.113\.9:53\s+60\s+0\s+not-allowed$/);
  });

  it('query --json prints the stored lines, one JSON object each', async () => {
    const { code, stdout } = await cli('audit', 'query', '--dir', temp.dir, '--vm', vmUuid(2), '--json');
    expect(code).toBe(0);
    const lines = stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; rec: unknown });
    expect(lines).toEqual([
      expect.objectContaining({
        seq: 2,
        rec: expect.objectContaining({ vm: expect.objectContaining({ uuid: vmUuid(2) }) }),
      }),
    ]);
  });

  it('query finds nothing outside the range, and refuses bad arguments with exit 2', async () => {
    const past = await cli(
      'audit',
      'query',
      '--dir',
      temp.dir,
      '--vm',
      vmUuid(1),
      '--since',
      '2020-01-01',
      '--until',
      '2020-01-02',
    );
    expect(past.stdout).toMatch(/\(no records\)\n$/);
    expect((await cli('audit', 'query', '--dir', temp.dir, '--since', 'yesterday')).code).toBe(2);
    const bad = await cli('audit', 'query', '--dir', temp.dir, '--vm', 'x; rm -rf /');
    expect([bad.code, bad.stderr]).toEqual([2, '--vm: expected a VM uuid, found "x; rm -rf /"\n']);
  });

  it('verify reports a whole chain (exit 0), against a published head too', async () => {
    const { code, stdout } = await cli('audit', 'verify', '--dir', temp.dir, '--head', head, '--head', '3');
    expect(stdout).toMatch(/^audit chain whole: 4 lines in 1 file \(seq 1-4\)/);
    expect(code).toBe(0);
  });

  it('verify fails when the chain does not reach a published seq', async () => {
    const { code, stdout } = await cli('audit', 'verify', '--dir', temp.dir, '--head', '5');
    expect(code).toBe(1);
    expect(stdout).toMatch(/first break: .* the chain ends at seq 4, before the published seq 5/);
    expect((await cli('audit', 'verify', '--dir', temp.dir, '--head', '5:abc')).code).toBe(2);
  });

  it('verify names the first break and exits 1 with E_AUDIT_CHAIN', async () => {
    const file = (await import('node:fs/promises')).readdir(temp.dir).then((n) => join(temp.dir, n[0]!));
    const path = await file;
    const original = await readFile(path, 'utf8');
    try {
      await writeFile(path, original.replace('"out":5,', '"out":50000,'));
      const { code, stdout, stderr } = await cli('--json', 'audit', 'verify', '--dir', temp.dir);
      expect(code).toBe(1);
      expect(JSON.parse(stdout)).toMatchObject({ break: { line: 4 } });
      expect(JSON.parse(stderr)).toMatchObject({ error: { code: 'E_AUDIT_CHAIN' } });
    } finally {
      await writeFile(path, original);
    }
  });
});
