import { describe, expect, it } from 'vitest';
import { DnsAttribution } from '../../../src/backend/dns/attribution.js';
import type { DomainEntry } from '../../../src/backend/dns/policy.js';

const A: DomainEntry = { type: 'domain', domain: 'a.example', protocol: 'tcp', ports: { from: 443, to: 443 } };
const B: DomainEntry = { type: 'domain', domain: 'b.example', protocol: 'tcp', ports: { from: 443, to: 443 } };
const IP = '198.51.100.20';

describe('DNS attribution: which answer opened which address for which NIC', () => {
  it('names only the name whose answer opened the address, for that NIC', () => {
    let now = 1000;
    const attribution = new DnsAttribution({ now: () => now });
    attribution.note(7, IP, 'a.example', [A], 121_000);
    attribution.note(7, '198.51.100.21', 'b.example', [B], 121_000);
    now = 2000;
    expect(attribution.admissions(7, IP, 1500)).toEqual([{ name: 'a.example', entries: [A] }]);
    expect(attribution.admissions(8, IP, 1500)).toEqual([]);
  });

  it('counts a name only within its window: from its answer to its expiry', () => {
    let now = 1000;
    const attribution = new DnsAttribution({ now: () => now });
    attribution.note(7, IP, 'a.example', [A], 5000);
    now = 3000;
    attribution.note(7, IP, 'b.example', [B], 9000);
    expect(attribution.admissions(7, IP, 2000).map((x) => x.name)).toEqual(['a.example']);
    // Two names answered with one address, both open at the flow's start: both, honestly.
    expect(attribution.admissions(7, IP, 4000).map((x) => x.name)).toEqual(['a.example', 'b.example']);
    expect(attribution.admissions(7, IP, 6000).map((x) => x.name)).toEqual(['b.example']);
    expect(attribution.admissions(7, IP, 500)).toEqual([]);
  });

  it('extends a window an answer refreshes, and starts a new one after it ended', () => {
    let now = 1000;
    const attribution = new DnsAttribution({ now: () => now });
    attribution.note(7, IP, 'a.example', [A], 5000);
    now = 4000;
    attribution.note(7, IP, 'a.example', [A], 8000);
    expect(attribution.admissions(7, IP, 1500)).toHaveLength(1);
    expect(attribution.admissions(7, IP, 7000)).toHaveLength(1);
    now = 10_000;
    attribution.note(7, IP, 'a.example', [A], 20_000);
    expect(attribution.admissions(7, IP, 1500)).toEqual([]);
    expect(attribution.admissions(7, IP, 12_000)).toHaveLength(1);
    expect(attribution.size).toBe(1);
  });

  it('ends the windows of a NIC that went away, so a later holder of its id is not credited', () => {
    let now = 1000;
    const attribution = new DnsAttribution({ now: () => now });
    attribution.note(7, IP, 'a.example', [A], 100_000);
    now = 2000;
    attribution.end(7);
    expect(attribution.admissions(7, IP, 1500)).toHaveLength(1);
    expect(attribution.admissions(7, IP, 3000)).toEqual([]);
    // The table rebuilt: every window ends.
    attribution.note(8, IP, 'b.example', [B], 100_000);
    now = 4000;
    attribution.end();
    expect(attribution.admissions(8, IP, 5000)).toEqual([]);
  });

  it('forgets windows retainMs after they ended, and keeps at most maxWindows', () => {
    let now = 0;
    const attribution = new DnsAttribution({ now: () => now, retainMs: 1000, maxWindows: 20 });
    attribution.note(1, IP, 'a.example', [A], 100);
    now = 1050;
    attribution.sweep();
    expect(attribution.admissions(1, IP, 50)).toHaveLength(1);
    now = 1200;
    attribution.sweep();
    expect(attribution.size).toBe(0);
    for (let i = 0; i < 25; i++) attribution.note(i, IP, 'a.example', [A], 2000 + i);
    expect(attribution.size).toBeLessThanOrEqual(20);
    // The newest stay.
    expect(attribution.admissions(24, IP, 1500)).toHaveLength(1);
  });
});
