import { describe, expect, it } from 'vitest';
import { effectiveSetting, serviceAssertedSettings } from '../../../src/backend/sysctls.js';
import { describeRule, failClosedRules, missingRules, ruleArgs } from '../../../src/backend/guard/rules.js';
import { classifyTableEvent } from '../../../src/backend/guard/table-events.js';
import { defaultSite, parseSite } from '../../../src/site/parse.js';

const site = defaultSite();

describe('fail-closed rules', () => {
  it('blackhole unmarked traffic from each gateway interface (IPv4 and IPv6) and from the uplink to each VM subnet', () => {
    expect(failClosedRules(site).map((r) => `ip ${ruleArgs(r).join(' ')}`)).toEqual([
      'ip -4 rule add pref 100 iif bond0.1081 fwmark 0/0x10000000 blackhole',
      'ip -4 rule add pref 101 iif bond0.1082 fwmark 0/0x10000000 blackhole',
      'ip -4 rule add pref 102 iif bond0.1083 fwmark 0/0x10000000 blackhole',
      'ip -4 rule add pref 103 iif eth0 to 192.168.128.0/17 fwmark 0/0x10000000 blackhole',
      'ip -4 rule add pref 104 iif eth0 to 192.168.122.0/24 fwmark 0/0x10000000 blackhole',
      'ip -4 rule add pref 105 iif eth0 to 192.168.123.0/24 fwmark 0/0x10000000 blackhole',
      'ip -6 rule add pref 100 iif bond0.1081 fwmark 0/0x10000000 blackhole',
      'ip -6 rule add pref 101 iif bond0.1082 fwmark 0/0x10000000 blackhole',
      'ip -6 rule add pref 102 iif bond0.1083 fwmark 0/0x10000000 blackhole',
    ]);
    expect(ruleArgs(failClosedRules(parseSite({ backend: { failClosedMark: 0x02000000 } }))[0]!)).toContain(
      '0/0x2000000',
    );
  });

  it('finds what `ip -j rule show` lacks, matching priority, interface, destination, mark and action', () => {
    const rules = failClosedRules(site).filter((r) => r.family === 4);
    const listed = JSON.stringify([
      { priority: 0, src: 'all', table: 'local' },
      { priority: 100, src: 'all', fwmark: '0', fwmask: '0x10000000', iif: 'bond0.1081', action: 'blackhole' },
      // Same priority and interface, but the wrong mask: not ours.
      { priority: 101, src: 'all', fwmark: '0', fwmask: '0x20000000', iif: 'bond0.1082', action: 'blackhole' },
      {
        priority: 103,
        src: 'all',
        dst: '192.168.128.0',
        dstlen: 17,
        fwmark: '0',
        fwmask: '0x10000000',
        iif: 'eth0',
        action: 'blackhole',
      },
    ]);
    expect(missingRules(rules, listed).map((r) => r.pref)).toEqual([101, 102, 104, 105]);
    expect(missingRules(rules, 'not json')).toHaveLength(6);
    expect(describeRule(rules[3]!)).toBe('pref 103 iif eth0 to 192.168.128.0/17 fwmark 0/0x10000000 blackhole (IPv4)');
  });
});

describe('settings the service re-asserts', () => {
  it('asks each gateway interface for src_valid_mark 1, arp_ignore 1, arp_announce 2, arp_filter 1, the uplink for src_valid_mark; the kernel combines all and the interface', () => {
    const settings = serviceAssertedSettings(site);
    expect(settings.filter((s) => s.iface === 'bond0.1081')).toEqual([
      { iface: 'bond0.1081', key: 'src_valid_mark', value: 1 },
      { iface: 'bond0.1081', key: 'arp_ignore', value: 1 },
      { iface: 'bond0.1081', key: 'arp_announce', value: 2 },
      { iface: 'bond0.1081', key: 'arp_filter', value: 1 },
    ]);
    expect(settings.filter((s) => s.iface === site.backend.uplink)).toEqual([
      { iface: site.backend.uplink, key: 'src_valid_mark', value: 1 },
    ]);
    expect(effectiveSetting('arp_ignore', 2, 0)).toBe(2);
    expect(effectiveSetting('arp_announce', 0, 2)).toBe(2);
    expect(effectiveSetting('arp_filter', 1, 0)).toBe(1);
    expect(effectiveSetting('arp_filter', 0, 0)).toBe(0);
    expect(effectiveSetting('src_valid_mark', 1, 0)).toBe(1);
  });
});

describe('nft monitor events', () => {
  it.each([
    ['{"delete": {"table": {"family": "inet", "name": "ticrypt", "handle": 4}}}', 'foreign'],
    ['{"add": {"table": {"family": "inet", "name": "ticrypt", "handle": 5}}}', 'foreign'],
    ['{"delete": {"chain": {"family": "inet", "table": "ticrypt", "name": "forward", "handle": 3}}}', 'foreign'],
    ['{"delete": {"rule": {"family": "inet", "table": "ticrypt", "chain": "source", "handle": 9}}}', 'foreign'],
    ['{"add": {"rule": {"family": "inet", "table": "ticrypt", "chain": "from_vm", "handle": 9}}}', 'foreign'],
    // The backend's own changes: elements (registrations, and the DNS front's opens and closes).
    ['{"add": {"element": {"family": "inet", "table": "ticrypt", "name": "nic_ids", "elem": {}}}}', 'ignore'],
    ['{"add": {"element": {"family": "inet", "table": "ticrypt", "name": "dns_p16", "elem": {}}}}', 'ignore'],
    ['{"delete": {"element": {"family": "inet", "table": "ticrypt", "name": "dns_p16", "elem": {}}}}', 'ignore'],
    // There is no chain whose rules the backend rewrites any more (the per-domain chain went with issue 10).
    ['{"delete": {"rule": {"family": "inet", "table": "ticrypt", "chain": "domains", "handle": 9}}}', 'foreign'],
    // Other tables, and noise.
    ['{"delete": {"table": {"family": "ip", "name": "filter", "handle": 2}}}', 'ignore'],
    ['{"delete": {"table": {"family": "inet", "name": "other", "handle": 2}}}', 'ignore'],
    ['rule without statements?!', 'ignore'],
    ['# ERROR: We lost some netlink events!', 'lost'],
    ['{"add": ', 'ignore'],
  ])('%s: %s', (line, kind) => {
    expect(classifyTableEvent(line).kind).toBe(kind);
  });
});
