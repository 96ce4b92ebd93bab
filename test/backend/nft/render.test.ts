import { describe, expect, it } from 'vitest';
import { NftError } from '../../../src/errors/nft-error.js';
import {
  chainNames,
  conntrackDeletions,
  counterChainNames,
  counterNames,
  dnsOpenElements,
  entryElements,
  nftCommand,
  portBlocks,
  renderChange,
  renderCleanup,
  renderRevoke,
  renderRuleset,
  sshDeletions,
  sshElements,
} from '../../../src/backend/nft/index.js';
import { defaultSite, parseSite } from '../../../src/site/parse.js';
import { registration, SAMPLE_ENTRIES } from './fixtures.js';

const site = defaultSite();
/** A NIC id, and the same id as nft writes it. */
const ID = 1;
const MARK = '0x00000001';

describe('renderRuleset for the default site', () => {
  const text = renderRuleset(site, { registrations: [], allowLists: [] });

  it('replaces only table inet ticrypt and its counters table, atomically', () => {
    expect(text.split('\n').slice(0, 3)).toEqual([
      'table inet ticrypt {}',
      'delete table inet ticrypt',
      'table inet ticrypt {',
    ]);
    expect(text).toContain(
      '\n}\ntable inet ticrypt_counters {}\ndelete table inet ticrypt_counters\ntable inet ticrypt_counters {\n',
    );
    expect(text.match(/^table /gm)).toHaveLength(4);
  });

  it.each([
    ['VM interfaces jump to their chains', 'iifname { "bond0.1081", "bond0.1082", "bond0.1083" } jump from_vm'],
    ['forward only to the uplink', 'oifname != "eth0" goto drop_cross_from'],
    ['never to the management address', 'ip daddr 198.18.0.1 goto drop_cross_from'],
    [
      'DNS only via the backend on the secure network',
      'iifname { "bond0.1081" } meta l4proto { tcp, udp } th dport 53 goto drop_dns_from',
    ],
    ['open networks unrestricted', 'iifname { "bond0.1082", "bond0.1083" } accept'],
    ['secure egress checked', 'iifname { "bond0.1081" } goto allow_egress'],
    [
      'each interface to its own source chain',
      'iifname vmap { "bond0.1081" : goto source_secure, "bond0.1082" : goto source_service, "bond0.1083" : goto source_datain }',
    ],
    [
      'an open network: only its own subnet, marked',
      'ip saddr 192.168.122.0/24 meta mark set meta mark | 0x10000000 accept',
    ],
    ['anything else marked as spoofed, to be counted and dropped', 'meta mark set 0x00ffff0a accept'],
    ['an allow-list network: its subnet', 'ip saddr != 192.168.128.0/17 meta mark set 0x00ffff0a accept'],
    [
      'registered interface, MAC and IP, on every packet (DNS to the front included)',
      'iifname . ether saddr . ip saddr != @nic_ids meta mark set 0x00ffff0b accept',
    ],
    ['the NIC id into the packet mark', 'meta mark set iifname . ether saddr . ip saddr map @nic_ids'],
    ['revoked NICs dropped', 'meta mark @revoked meta mark set 0x00ffff0b accept'],
    [
      'a VM subnet arriving elsewhere dropped',
      'iifname != "lo" ip saddr { 192.168.128.0/17, 192.168.122.0/24, 192.168.123.0/24 } meta mark set 0x00ffff0c accept',
    ],
    ['the uplink marked', 'iifname "eth0" meta mark set meta mark | 0x10000000'],
    [
      'established only for flows accepted for this NIC',
      'ct state established,related iifname . ip saddr . ct mark @nic_flows accept',
    ],
    ['other established flows dropped', 'ct state established,related goto drop_unowned_flow_from'],
    ['the NIC id becomes the flow mark', 'ct mark set meta mark & 0x00ffffff'],
    [
      'replies only for flows accepted for that NIC',
      'ct state established,related oifname . ip daddr . ct mark @nic_flows accept',
    ],
    ['exact address and port', 'ct mark . ip daddr . meta l4proto . th dport @allow_32_p16 accept'],
    ['addresses a DNS answer opened, keyed alike', 'ct mark . ip daddr . meta l4proto . th dport @dns_p16 accept'],
    [
      'CIDR and port block',
      'ct mark . ip daddr & 255.255.240.0 . meta l4proto . th dport & 0xfff0 @allow_20_p12 accept',
    ],
    [
      'masquerade: each subnet from its own interface',
      'oifname "eth0" iifname "bond0.1082" ip saddr 192.168.122.0/24 masquerade',
    ],
    ['DNS to the gateway', 'iifname "bond0.1081" ip daddr 192.168.128.1 meta l4proto { tcp, udp } th dport 53 accept'],
    ['DHCP', 'meta nfproto ipv4 udp sport 68 udp dport 67 accept'],
    ['the rest of input dropped', 'goto drop_input_from'],
    ['a drop marks the packet with its kind', 'meta mark set 0x00ffff05 accept'],
    [
      'marked packets dropped after the counters table counted them',
      'type filter hook forward priority filter + 20; policy accept;\n    meta mark { 0x00ffff01, 0x00ffff02, 0x00ffff03, 0x00ffff04, 0x00ffff05, 0x00ffff06, 0x00ffff07, 0x00ffff08, 0x00ffff09, 0x00ffff0a, 0x00ffff0b, 0x00ffff0c } drop',
    ],
    ['source drops likewise', 'type filter hook prerouting priority mangle + 20; policy accept;'],
    ['input drops likewise', 'type filter hook input priority filter + 20; policy accept;'],
    [
      'a marked packet counted by its kind, not as accepted',
      'type filter hook forward priority filter + 10; policy accept;\n    meta mark vmap { 0x00ffff01 : goto count_drop_input_from, 0x00ffff02 : goto count_drop_unowned_flow_from, 0x00ffff03 : goto count_drop_cross_from, 0x00ffff04 : goto count_drop_dns_from, 0x00ffff05 : goto count_drop_egress_from, 0x00ffff06 : goto count_drop_cross_to, 0x00ffff07 : goto count_drop_inbound_to, 0x00ffff08 : goto count_drop_unowned_flow_to, 0x00ffff09 : goto count_drop_ssh_source_to }',
    ],
    [
      'source drops counted by kind',
      'meta mark vmap { 0x00ffff0a : goto count_spoofed, 0x00ffff0b : goto count_unregistered, 0x00ffff0c : goto count_spoofed_other }',
    ],
    [
      'a drop counted for its network, then site-wide',
      'counter name iifname map { "bond0.1081" : "dropped_egress.secure", "bond0.1082" : "dropped_egress.service", "bond0.1083" : "dropped_egress.datain" }\n    counter name dropped_egress',
    ],
    [
      'a drop towards a VM counted for the network it goes to',
      'counter name oifname map { "bond0.1081" : "dropped_inbound.secure", "bond0.1082" : "dropped_inbound.service", "bond0.1083" : "dropped_inbound.datain" }\n    counter name dropped_inbound',
    ],
    [
      'an unregistered source counted for its network',
      'counter name iifname map { "bond0.1081" : "dropped_unregistered_secure" }',
    ],
    ['accepted packets counted after the filter', 'type filter hook forward priority filter + 10; policy accept;'],
    [
      'accepted forwarded packets per network each way',
      'counter name oifname map { "bond0.1081" : "accepted_to_vms.secure", "bond0.1082" : "accepted_to_vms.service", "bond0.1083" : "accepted_to_vms.datain" }',
    ],
    [
      'accepted flows per network',
      'ct state new counter name iifname map { "bond0.1081" : "flows_from_vms.secure", "bond0.1082" : "flows_from_vms.service", "bond0.1083" : "flows_from_vms.datain" }',
    ],
    [
      'accepted packets to the gateway per network',
      'counter name iifname map { "bond0.1081" : "accepted_to_gateway.secure", "bond0.1082" : "accepted_to_gateway.service", "bond0.1083" : "accepted_to_gateway.datain" }',
    ],
    [
      'SSH forwards: the port gives the flow its NIC id and its NIC port 22',
      'iifname "eth0" fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 22000-54999 ct mark set tcp dport map @ssh_owners dnat ip to tcp dport map @ssh_forwards : 22',
    ],
    [
      'SSH forwards for the backend itself (output NAT)',
      'fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 22000-54999 ct mark set tcp dport map @ssh_owners dnat ip to tcp dport map @ssh_forwards : 22',
    ],
    [
      'a forwarded flow must go to the NIC its port names',
      'ct status dnat tcp dport 22 oifname . ip daddr . ct mark @nic_flows goto ssh_in',
    ],
    ['a narrowed VM checked per NIC', 'ct mark @ssh_narrowed goto ssh_narrowed'],
    ['the site sources (every source by default)', 'oifname "bond0.1081" accept'],
    ['a narrowed client block', 'ct mark . ip saddr & 255.255.255.0 @ssh_src_24 accept'],
    ['other clients dropped and counted', 'goto drop_ssh_source_to'],
    ['no VM to VM', 'iifname != "eth0" goto drop_cross_to'],
  ])('%s', (_what, line) => {
    expect(text).toContain(`    ${line}\n`);
  });

  it('declares every counter its rules name, and names every chain it declares in chainNames', () => {
    const declared = new Set(counterNames(site));
    const named = [
      ...[...text.matchAll(/counter name (?!iifname|oifname)(\w+) /g)].map((m) => m[1]),
      ...[...text.matchAll(/: "([\w.-]+)"/g)].map((m) => m[1]),
    ];
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((name) => !declared.has(name ?? ''))).toEqual([]);
    const chains = [...text.matchAll(/^ {2}chain (\S+) \{/gm)].map((m) => m[1]);
    expect(chains.sort()).toEqual([...chainNames(site), ...counterChainNames()].sort());
  });

  it("uses the site's fail-closed mark bit", () => {
    const other = parseSite({ backend: { failClosedMark: '0x02000000' } });
    expect(renderRuleset(other, { registrations: [], allowLists: [] })).toContain(
      'iifname "eth0" meta mark set meta mark | 0x02000000\n',
    );
  });

  it('logs with the ticrypt prefix, rate-limited, only when asked', () => {
    expect(text).not.toContain('log prefix');
    const logged = renderRuleset(site, { registrations: [], allowLists: [] }, { log: true, logRate: '5/second' });
    expect(logged).toContain('limit rate 5/second log prefix "ticrypt egress drop: " level info');
  });

  it('puts registrations and allow entries in the sets', () => {
    const r = registration(1);
    const full = renderRuleset(site, {
      registrations: [r],
      allowLists: [{ vmUuid: r.vmUuid, entries: SAMPLE_ENTRIES }],
    });
    expect(full).toContain('"bond0.1081" . 52:54:00:00:00:01 . 192.168.129.1 : 0x00000002');
    expect(full).toContain('"bond0.1081" . 192.168.129.1 . 0x00000002');
    // A domain entry has no element of its own: the DNS front's answers fill the dns_* sets, which start empty.
    expect(full).toContain(
      '  set dns_p16 {\n    type mark . ipv4_addr . inet_proto . inet_service\n    flags timeout\n  }',
    );
    expect(full).not.toContain('pypi');
  });

  it('looks up the DNS-opened sets after the allow-list sets, once the NIC id is the flow mark', () => {
    const egress = text.slice(text.indexOf('chain allow_egress'));
    expect(egress.indexOf('ct mark set meta mark & 0x00ffffff')).toBeLessThan(egress.indexOf('@allow_32_p16'));
    expect(egress.indexOf('@allow_0_any')).toBeLessThan(egress.indexOf('@dns_p16'));
    expect(egress.indexOf('@dns_any')).toBeLessThan(egress.indexOf('goto drop_egress_from'));
  });
});

describe('element encodings', () => {
  it.each([
    [1000, 1100, 8 + 5 + 13],
    [1, 65535, 1],
    [443, 443, 1],
    [4096, 8191, 1],
  ])('port range %i-%i is %i exact blocks', (from, to, count) => {
    const blocks = portBlocks(from, to);
    expect(blocks).toHaveLength(count);
    const covered = blocks.reduce((sum, b) => sum + 2 ** (16 - b.bits), 0);
    expect(covered).toBe(to - (from === 1 ? 0 : from) + 1);
  });

  it('splits a /17 into eight /20 elements', () => {
    const elements = entryElements(ID, {
      type: 'address',
      address: '10.0.128.0/17',
      protocol: 'tcp',
      ports: { from: 22, to: 22 },
    });
    expect(elements.map((e) => e.set)).toEqual(Array(8).fill('allow_20_p16'));
    expect(elements[1]?.key).toBe(`${MARK} . 10.0.144.0 . tcp . 22`);
  });

  it.each([
    [{ type: 'address', address: '0.0.0.0/0', protocol: 'any' }, 'allow_0_any', MARK],
    [{ type: 'address', address: '203.0.113.7', protocol: 'icmp' }, 'allow_32_proto', `${MARK} . 203.0.113.7 . icmp`],
    [{ type: 'address', address: '203.0.113.7/24', protocol: 'udp' }, 'allow_24_proto', `${MARK} . 203.0.113.0 . udp`],
  ] as const)('%j', (entry, set, key) => {
    expect(entryElements(ID, entry)).toEqual([{ set, key }]);
  });

  it('puts nothing in the sets for a domain entry', () => {
    expect(entryElements(ID, { type: 'domain', domain: 'pypi.org', protocol: 'tcp' })).toEqual([]);
  });

  it.each([
    [{ protocol: 'tcp', ports: { from: 443, to: 443 } }, [['dns_p16', `${MARK} . 203.0.113.10 . tcp . 443`]]],
    [{ protocol: 'any' }, [['dns_any', `${MARK} . 203.0.113.10`]]],
    [{ protocol: 'udp' }, [['dns_proto', `${MARK} . 203.0.113.10 . udp`]]],
    [{ protocol: 'tcp', ports: { from: 8080, to: 8095 } }, [['dns_p12', `${MARK} . 203.0.113.10 . tcp . 8080`]]],
  ] as const)('opens an answered address for a domain entry %j', (rest, expected) => {
    const elements = dnsOpenElements(ID, '203.0.113.10', { type: 'domain', domain: 'pypi.org', ...rest });
    expect(elements.map((e) => [e.set, e.key])).toEqual(expected);
  });

  it.each([
    ['a NIC id out of range', () => entryElements(0x01000000, SAMPLE_ENTRIES[0]!), 'nicId'],
    [
      'a non-address answer',
      () => dnsOpenElements(ID, '203.0.113.10"', { type: 'domain', domain: 'pypi.org', protocol: 'tcp' }),
      'address',
    ],
    [
      'ports with icmp',
      () => entryElements(ID, { type: 'address', address: '1.2.3.4', protocol: 'icmp', ports: { from: 1, to: 2 } }),
      'ports',
    ],
    [
      'port 70000',
      () => entryElements(ID, { type: 'address', address: '1.2.3.4', protocol: 'tcp', ports: { from: 1, to: 70000 } }),
      'ports.to',
    ],
    ['a bad CIDR', () => entryElements(ID, { type: 'address', address: '1.2.3.4/33', protocol: 'tcp' }), 'address'],
    [
      'an injected interface',
      () => renderRuleset(parseSiteWithUplink(), { registrations: [], allowLists: [] }),
      'backend.uplink',
    ],
  ])('rejects %s with E_NFT_INPUT', (_what, render, field) => {
    expect(render).toThrowError(expect.objectContaining({ code: 'E_NFT_INPUT', field }));
  });
});

function parseSiteWithUplink() {
  return { ...site, backend: { ...site.backend, uplink: 'eth0" accept' } };
}

describe('incremental transactions', () => {
  const r = registration(1);
  const ctx = { site };

  const ids = 'add element inet ticrypt nic_ids { "bond0.1081" . 52:54:00:00:00:01 . 192.168.129.1 : 0x00000002 }';
  const flows = 'add element inet ticrypt nic_flows { "bond0.1081" . 192.168.129.1 . 0x00000002 }';

  it('registers with element adds only: identity, then entries keyed by the NIC id', () => {
    const entries = [SAMPLE_ENTRIES[0]!];
    expect(renderChange(ctx, [], [{ registration: r, entries }])).toBe(
      [ids, flows, 'add element inet ticrypt allow_32_p16 { 0x00000002 . 203.0.113.10 . tcp . 443 }', ''].join('\n'),
    );
  });

  it('deregisters with plain deletes (map elements by key)', () => {
    expect(renderChange(ctx, [{ registration: r, entries: [] }], [])).toBe(
      [
        'delete element inet ticrypt nic_ids { "bond0.1081" . 52:54:00:00:00:01 . 192.168.129.1 }',
        'delete element inet ticrypt nic_flows { "bond0.1081" . 192.168.129.1 . 0x00000002 }',
        '',
      ].join('\n'),
    );
  });

  it('deregisters with idempotent deletes when asked', () => {
    const text = renderChange({ ...ctx, idempotent: true }, [{ registration: r, entries: [] }], []);
    expect(text).toBe(
      [
        ids,
        flows,
        'delete element inet ticrypt nic_ids { "bond0.1081" . 52:54:00:00:00:01 . 192.168.129.1 }',
        'delete element inet ticrypt nic_flows { "bond0.1081" . 192.168.129.1 . 0x00000002 }',
        '',
      ].join('\n'),
    );
  });

  it('revokes by NIC id, and cleans up with the id', () => {
    expect(renderRevoke(site, [{ registration: r, entries: [] }])).toBe(
      'add element inet ticrypt revoked { 0x00000002 }\n',
    );
    expect(renderCleanup(site, [{ registration: r, entries: [] }])).toMatch(
      /delete element inet ticrypt revoked \{ 0x00000002 \}\n$/,
    );
  });

  it('moves a NIC to a new id: the old map element deleted before the new one is added', () => {
    const moved = { ...r, nicId: 9 };
    const text = renderChange(ctx, [{ registration: r, entries: [] }], [{ registration: moved, entries: [] }]);
    expect(text.indexOf('delete element inet ticrypt nic_ids')).toBeLessThan(
      text.indexOf('add element inet ticrypt nic_ids'),
    );
    expect(text).toContain(': 0x00000009 }');
  });

  it('keeps an element another entry still needs', () => {
    const a = { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } } as const;
    const b = { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 440, to: 450 } } as const;
    const text = renderChange(ctx, [{ registration: r, entries: [a, b] }], [{ registration: r, entries: [a] }]);
    expect(text).toContain('delete element inet ticrypt allow_32_p16 { 0x00000002 . 203.0.113.10 . tcp . 440,');
    expect(text).not.toMatch(/delete.*443/);
  });

  it('is empty on an open network', () => {
    expect(renderChange(ctx, [], [{ registration: registration(1, 'service'), entries: SAMPLE_ENTRIES }])).toBe('');
  });

  it('forwards SSH with one map element (and its owner), whatever else the NIC has', () => {
    const ssh = { port: 22001, sources: ['0.0.0.0/0'], narrowed: false };
    const text = renderChange({ site }, [], [{ registration: r, entries: [], ssh }]);
    expect(text).toContain(`add element inet ticrypt ssh_forwards { 22001 : ${r.ip} }\n`);
    expect(text).toContain(`add element inet ticrypt ssh_owners { 22001 : 0x00000002 }\n`);
    const gone = renderChange({ site }, [{ registration: r, entries: [], ssh }], []);
    expect(gone).toContain('delete element inet ticrypt ssh_forwards { 22001 }\n');
    expect(gone).toContain('delete element inet ticrypt ssh_owners { 22001 }\n');
  });
});

describe('SSH access elements', () => {
  const r = registration(1);
  /** registration(1)'s NIC id, as nft writes it. */
  const OWN = '0x00000002';
  it('narrowed: the NIC id and its client blocks, keyed by id', () => {
    const elements = sshElements(site, r, {
      port: 22010,
      sources: ['203.0.113.7/32', '198.51.100.0/23', '0.0.0.0/0'],
      narrowed: true,
    });
    expect(elements).toEqual([
      { set: 'ssh_forwards', key: '22010', value: r.ip },
      { set: 'ssh_owners', key: '22010', value: OWN },
      { set: 'ssh_narrowed', key: OWN },
      { set: 'ssh_src_32', key: `${OWN} . 203.0.113.7` },
      { set: 'ssh_src_24', key: `${OWN} . 198.51.100.0` },
      { set: 'ssh_src_24', key: `${OWN} . 198.51.101.0` },
      { set: 'ssh_src_0', key: OWN },
    ]);
  });

  it.each([
    ['a port outside the range', { port: 2222, sources: ['0.0.0.0/0'], narrowed: false }, 'ssh.port'],
    ['a bad source', { port: 22010, sources: ['203.0.113.0/33'], narrowed: true }, 'ssh.sources'],
  ])('refuses %s', (_what, ssh, field) => {
    expect(() => sshElements(site, r, ssh)).toThrow(new RegExp(`^nft input ${field.replace('.', '\\.')}:`));
  });

  it('refuses a NIC of a network without SSH access', () => {
    const service = registration(2, 'service');
    expect(() => sshElements(site, service, { port: 22010, sources: [], narrowed: false })).toThrow(
      'nft input ssh: expected a network with SSH access, found "service"',
    );
  });

  it('ends every forwarded connection of a NIC whose forward went, those of lost client networks otherwise', () => {
    const before = { port: 22010, sources: ['203.0.113.0/24', '198.51.100.0/24'], narrowed: true };
    const flows = ['-p', 'tcp', '--orig-port-dst', '22010', '--reply-src', r.ip];
    expect(sshDeletions(r.ip, before, undefined)).toEqual([flows]);
    expect(sshDeletions(r.ip, before, { ...before, port: 22011 })).toEqual([flows]);
    expect(sshDeletions(r.ip, before, before)).toEqual([]);
    expect(sshDeletions(r.ip, before, { ...before, sources: ['203.0.0.0/16'] })).toEqual([
      [...flows, '-s', '198.51.100.0', '--mask-src', '255.255.255.0'],
    ]);
    expect(sshDeletions(r.ip, { ...before, sources: ['0.0.0.0/0'] }, before)).toEqual([flows]);
  });
});

describe('conntrack cleanup', () => {
  const r = registration(1);
  it('scans nothing for a deregistered NIC: the registered/revoked check cuts its flows', () => {
    expect(conntrackDeletions([{ registration: r, entries: SAMPLE_ENTRIES }], [])).toEqual([]);
  });

  it('ends the forwarded SSH connections of a deregistered NIC', () => {
    const ssh = { port: 22001, sources: ['0.0.0.0/0'], narrowed: false };
    expect(conntrackDeletions([{ registration: r, entries: SAMPLE_ENTRIES, ssh }], [])).toEqual([
      ['-p', 'tcp', '--orig-port-dst', '22001', '--reply-src', r.ip],
    ]);
  });

  it('deletes the connections of a removed entry', () => {
    const before = [{ registration: r, entries: SAMPLE_ENTRIES.slice(0, 3) }];
    const after = [{ registration: r, entries: SAMPLE_ENTRIES.slice(0, 1) }];
    expect(conntrackDeletions(before, after)).toEqual([
      ['-s', r.ip, '-d', '198.51.100.0', '--mask-dst', '255.255.252.0', '-p', 'tcp'],
      ['-s', r.ip, '-d', '203.0.113.0', '--mask-dst', '255.255.255.0', '-p', 'icmp'],
    ]);
  });
});

describe('errors and commands', () => {
  it('formats NftError with the first stderr line', () => {
    const error = new NftError({ exitCode: 1, stderr: '\nError: No such file or directory\nmore', script: 'x' });
    expect(error.message).toBe('nft failed (exit 1) applying table inet ticrypt: Error: No such file or directory');
    expect(error.code).toBe('E_NFT_APPLY');
  });

  it('runs nft in a namespace when asked, never through a shell', () => {
    expect(nftCommand({ netns: 'lab', check: true })).toEqual(['ip', 'netns', 'exec', 'lab', 'nft', '-c', '-f', '-']);
    expect(nftCommand()).toEqual(['nft', '-f', '-']);
  });

  it('accepts any valid site shape', () => {
    expect(() =>
      renderRuleset(parseSite({ backend: { uplink: 'up0' } }), { registrations: [], allowLists: [] }),
    ).not.toThrow();
  });
});
