import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSite, defaultSite, parseSite } from '../../src/site/parse.js';
import { parseSiteText } from '../../src/site/load.js';
import { arbSiteInput } from '../support/arbitraries.js';

describe('presets', () => {
  it('reproduce the seed networks exactly', () => {
    const site = defaultSite();
    expect(site.name).toBe('ticrypt');
    expect(
      site.networks.map((n) => [
        n.name,
        n.bridge,
        n.vlan,
        n.uplink.interface,
        n.subnet,
        n.gateway,
        n.dhcp.start,
        n.dhcp.end,
        n.egress,
        n.dns,
      ]),
    ).toEqual([
      [
        'secure',
        'br-secure',
        1081,
        'bond0.1081',
        '192.168.128.0/17',
        '192.168.128.1',
        '192.168.129.1',
        '192.168.255.254',
        'allow-list',
        'controlled',
      ],
      [
        'service',
        'br-service',
        1082,
        'bond0.1082',
        '192.168.122.0/24',
        '192.168.122.1',
        '192.168.122.3',
        '192.168.122.254',
        'open',
        'open',
      ],
      [
        'datain',
        'br-datain',
        1083,
        'bond0.1083',
        '192.168.123.0/24',
        '192.168.123.1',
        '192.168.123.3',
        '192.168.123.254',
        'open',
        'open',
      ],
    ]);
  });

  it('port security: gateway-only on allow-list networks, flat on open ones, IPv6 off; both overridable', () => {
    expect(defaultSite().networks.map((n) => [n.name, n.peers, n.ipv6, n.gatewayMac])).toEqual([
      ['secure', 'gateway', 'off', undefined],
      ['service', 'all', 'off', undefined],
      ['datain', 'all', 'off', undefined],
    ]);
    const site = parseSite({
      networks: {
        secure: { preset: 'secure', peers: 'groups', gatewayMac: '52:54:00:AA:00:01' },
        service: { preset: 'service', ipv6: 'link-local' },
      },
    });
    expect(site.networks.map((n) => [n.peers, n.ipv6, n.gatewayMac])).toEqual([
      ['groups', 'off', '52:54:00:aa:00:01'],
      ['all', 'link-local', undefined],
    ]);
  });

  it('carry the DHCP range size, beyond dnsmasq default lease limit for the /17', () => {
    const [secure, service] = defaultSite().networks;
    expect(secure?.dhcp.size).toBe(32510);
    expect(service?.dhcp.size).toBe(252);
  });

  it('turn SSH access on for secure only, with its defaults; enabled: false turns it off, any field on elsewhere', () => {
    const [secure, service, datain] = defaultSite().networks;
    expect(secure?.ssh).toEqual({ ports: { from: 22000, to: 54999 }, sources: ['0.0.0.0/0'], quarantine: 3_600_000 });
    expect(service?.ssh).toBeUndefined();
    expect(datain?.ssh).toBeUndefined();
    const site = parseSite({
      networks: {
        secure: { preset: 'secure', ssh: { enabled: false } },
        service: {
          preset: 'service',
          ssh: { ports: 2222, address: '203.0.113.1', sources: ['198.51.100.0/24'], quarantine: '10m' },
        },
      },
    });
    expect(site.networks[0]?.ssh).toBeUndefined();
    expect(site.networks[1]?.ssh).toEqual({
      ports: { from: 2222, to: 2222 },
      address: '203.0.113.1',
      sources: ['198.51.100.0/24'],
      quarantine: 600_000,
    });
  });

  it('merge overrides over a preset, one level deep for uplink and dhcp', () => {
    const site = parseSite({
      networks: { secure: { preset: 'secure', vlan: 2081, uplink: { parent: 'bond1' }, dhcp: { leaseTime: '1h' } } },
    });
    const secure = site.networks[0]!;
    expect(secure.vlan).toBe(2081);
    expect(secure.uplink).toEqual({ parent: 'bond1', mode: 'vlan', interface: 'bond1.2081' });
    expect(secure.dhcp).toEqual({ start: '192.168.129.1', end: '192.168.255.254', leaseTime: '1h', size: 32510 });
    expect(secure.gatewayInterface).toBe('bond0.2081');
  });

  it('normalize MACs to lower case', () => {
    const site = parseSite({
      networks: { service: { preset: 'service', reservations: [{ mac: '52:54:00:AB:CD:EF', ip: '192.168.122.2' }] } },
    });
    expect(site.networks[0]?.reservations).toEqual([{ mac: '52:54:00:ab:cd:ef', ip: '192.168.122.2' }]);
  });
});

describe('site files', () => {
  it('read YAML with hosts and a custom network', () => {
    const site = parseSiteText(`
name: lab
backend: { management: { address: 198.18.0.2, port: 9443 }, uplink: wan0, upstreamDns: [198.51.100.53] }
hosts:
  kvm-01: {}
  kvm-02: { uplink: bond1 }
networks:
  secure: { preset: secure }
  lab:
    kind: lab
    egress: open
    dns: open
    bridge: br-lab
    vlan: 1090
    uplink: { parent: bond0, mode: trunk }
    subnet: 10.90.0.0/24
    gateway: 10.90.0.1
    dhcp: { start: 10.90.0.10, end: 10.90.0.200 }
    mtu: 9000
`);
    expect(site.hosts).toEqual([{ name: 'kvm-01' }, { name: 'kvm-02', uplink: 'bond1' }]);
    expect(site.networks.map((n) => n.name)).toEqual(['secure', 'lab']);
    expect(site.networks[1]?.uplink).toEqual({ parent: 'bond0', mode: 'trunk', interface: 'bond0' });
    expect(site.networks[1]?.mtu).toBe(9000);
    expect(site.backend.management).toEqual({ address: '198.18.0.2', port: 9443 });
  });

  it('report a YAML syntax error with its position', () => {
    expect(() => parseSiteText('networks: [\n', 'bad.yaml')).toThrow(
      /bad.yaml:\n {2}\(file\): expected YAML, found a syntax error at line \d+, column \d+/,
    );
  });

  it('refuse duplicate keys', () => {
    expect(() => parseSiteText('name: a\nname: b\n')).toThrow(/expected YAML/);
  });

  it('treat an empty file as the defaults', () => {
    expect(parseSiteText('')).toEqual(defaultSite());
  });
});

describe('properties', () => {
  it('every generated valid site parses', () => {
    fc.assert(
      fc.property(arbSiteInput, (input) => {
        const result = checkSite(input);
        if (!result.ok) throw new Error(JSON.stringify(result.issues));
      }),
      { numRuns: 200 },
    );
  });

  it('random input never throws anything but issues', () => {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        const result = checkSite(input);
        if (!result.ok) {
          expect(result.issues.length).toBeGreaterThan(0);
          for (const issue of result.issues) expect(issue.message).toMatch(/\S/);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random mutations of a valid network never throw anything but issues', () => {
    const field = fc.constantFrom(
      'vlan',
      'bridge',
      'subnet',
      'gateway',
      'dhcp',
      'mtu',
      'uplink',
      'portgroups',
      'kind',
      'egress',
    );
    fc.assert(
      fc.property(field, fc.anything(), (key, value) => {
        checkSite({ networks: { secure: { preset: 'secure', [key]: value } } });
      }),
      { numRuns: 500 },
    );
  });
});
