import { describe, expect, it } from 'vitest';
import { renderUlogdConfig } from '../../../src/backend/audit/ulogd-config.js';
import { SuppressedCounts } from '../../../src/backend/audit/refusal-counts.js';
import { renderRuleset } from '../../../src/backend/nft/ruleset.js';
import { defaultSite, parseSite } from '../../../src/site/parse.js';

const EMPTY = { registrations: [], allowLists: [] };

describe('flow audit in the table and in ulogd.conf', () => {
  it('leaves the table as it was without audit', () => {
    const table = renderRuleset(defaultSite(), EMPTY);
    expect(table).not.toMatch(/audit_|0x8[0-9a-f]000000|log group/);
  });

  it('marks admissions, masks ct mark lookups and sends refusals to NFLOG with exact counters', () => {
    const table = renderRuleset(defaultSite(), EMPTY, { audit: { nflogGroup: 2 } });
    expect(table).toMatch(/@allow_32_p16 ct mark set ct mark \| 0x81000000 accept/);
    expect(table).toMatch(/@dns_\S+ ct mark set ct mark \| 0x82000000 accept/);
    expect(table).toMatch(/ip saddr \. ct mark & 0x00ffffff @nic_flows accept/);
    expect(table).not.toMatch(/ip saddr \. ct mark @nic_flows/);
    expect(table).toContain(
      'counter name audit_seen_not_allowed_secure limit rate 50/second burst 100 packets log prefix "ticrypt-audit not-allowed secure" group 2 counter name audit_logged_not_allowed_secure',
    );
    // service and datain keep counts only by default: no refusal records there.
    expect(table).not.toMatch(/audit_seen_\w+_(service|datain)/);
  });

  it('refuses flow records on an open network (no NIC id to name the VM)', () => {
    expect(() => parseSite({ networks: { service: { preset: 'service', audit: 'records' } } })).toThrow(
      /audit.*expected 'counts'/s,
    );
  });

  it('writes a ulogd.conf for end events with the audit bit and NFLOG refusals', () => {
    const conf = renderUlogdConfig({
      flowFile: '/var/lib/ticrypt-net/audit/flows.ulogd.json',
      refusedFile: '/var/lib/ticrypt-net/audit/refused.ulogd.json',
      logFile: '/var/lib/ticrypt-net/audit/ulogd.log',
      nflogGroup: 2,
    });
    expect(conf).toContain('stack=ct1:NFCT,mark1:MARK,ip2str1:IP2STR,flows:JSON');
    expect(conf).toContain('event_mask=0x00000004');
    expect(conf).toContain('reliable=1');
    expect(conf).toContain('mark=0x80000000');
    expect(conf).toContain('group=2');
    // ulogd applies a buffer size only below its maximum (equal, it keeps the kernel's ~208 KiB default).
    const buffers = [...conf.matchAll(/netlink_socket_buffer_size=(\d+)\nnetlink_socket_buffer_maxsize=(\d+)/g)];
    expect(buffers).toHaveLength(2);
    for (const [, size, max] of buffers) expect(Number(size)).toBeLessThan(Number(max));
    expect(conf).toContain(`netlink_socket_buffer_size=${64 * 1024 * 1024}`);
    expect(() => renderUlogdConfig({ flowFile: 'x"y', refusedFile: '/r', logFile: '/l', nflogGroup: 2 })).toThrow();
  });

  it('applies --audit-netlink-buffer to both sockets, maximum twice the size, and refuses a size out of range', () => {
    const files = { flowFile: '/f', refusedFile: '/r', logFile: '/l', nflogGroup: 2 };
    const conf = renderUlogdConfig(files);
    expect(conf).toContain('netlink_socket_buffer_size=67108864\nnetlink_socket_buffer_maxsize=134217728');
    expect(conf).toContain('netlink_socket_buffer_size=8388608\nnetlink_socket_buffer_maxsize=16777216');
    const tiny = renderUlogdConfig({ ...files, netlinkBuffer: 4096, nflogBuffer: 4096 });
    expect(tiny.match(/netlink_socket_buffer_size=4096\nnetlink_socket_buffer_maxsize=8192/g)).toHaveLength(2);
    for (const bad of [4095, 1.5, 2 ** 31])
      expect(() => renderUlogdConfig({ ...files, netlinkBuffer: bad }), String(bad)).toThrow(/4096-1073741824/);
  });

  it('counts what the rate limit suppressed exactly, from a table rebuilt at 0', () => {
    const counts = new SuppressedCounts(defaultSite());
    const values = (seen: number, logged: number) =>
      new Map([
        ['audit_seen_not_allowed_secure', seen],
        ['audit_logged_not_allowed_secure', logged],
      ]);
    expect(counts.next(values(120, 100), true)).toEqual([
      { network: 'secure', reason: 'not-allowed', count: 20, logged: 100 },
    ]);
    expect(counts.next(values(130, 110))).toEqual([]);
    // The table was rebuilt: its counters start again from 0.
    expect(counts.next(values(5, 2))).toEqual([{ network: 'secure', reason: 'not-allowed', count: 3, logged: 2 }]);
  });
});
