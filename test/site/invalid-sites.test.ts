import { describe, expect, it } from 'vitest';
import { checkSite, parseSite } from '../../src/site/parse.js';
import { SiteError } from '../../src/errors/site-error.js';

const secure = (override: Record<string, unknown>) => ({ networks: { secure: { preset: 'secure', ...override } } });

// Each row: a site, the field path of the first issue, and its exact message.
const cases: [string, unknown, string, string][] = [
  ['VLAN out of range', secure({ vlan: 5000 }), 'networks.secure.vlan', 'expected an integer 1-4094, found 5000'],
  ['VLAN not an integer', secure({ vlan: 10.5 }), 'networks.secure.vlan', 'expected an integer 1-4094, found 10.5'],
  ['VLAN as text', secure({ vlan: '1081' }), 'networks.secure.vlan', 'expected an integer 1-4094, found "1081"'],
  [
    'bridge name too long',
    secure({ bridge: 'br-secure-network' }),
    'networks.secure.bridge',
    "expected an interface name of 1-15 letters, digits, '_', '.' or '-', found \"br-secure-network\"",
  ],
  [
    'network name with a slash',
    { networks: { 'sec/ure': { preset: 'secure' } } },
    'networks.sec/ure',
    "expected a name of 1-32 lower-case letters, digits, '-' or '_', starting with a letter, found \"sec/ure\"",
  ],
  [
    'subnet with host bits',
    secure({ subnet: '192.168.128.1/17' }),
    'networks.secure.subnet',
    'expected the network address (192.168.128.0/17), found "192.168.128.1/17"',
  ],
  [
    'subnet not CIDR',
    secure({ subnet: '192.168.128.0' }),
    'networks.secure.subnet',
    'expected an IPv4 network like 192.168.128.0/17, found "192.168.128.0"',
  ],
  [
    'gateway outside the subnet',
    secure({ gateway: '10.0.0.1' }),
    'networks.secure.gateway',
    'expected a host address of 192.168.128.0/17 (192.168.128.1-192.168.255.254), found 10.0.0.1',
  ],
  [
    'gateway is the network address',
    secure({ gateway: '192.168.128.0' }),
    'networks.secure.gateway',
    'expected a host address of 192.168.128.0/17 (192.168.128.1-192.168.255.254), found 192.168.128.0',
  ],
  [
    'gateway is the broadcast address',
    secure({ gateway: '192.168.255.255', dhcp: { start: '192.168.129.1', end: '192.168.200.1' } }),
    'networks.secure.gateway',
    'expected a host address of 192.168.128.0/17 (192.168.128.1-192.168.255.254), found 192.168.255.255',
  ],
  [
    'DHCP start after end',
    secure({ dhcp: { start: '192.168.200.1', end: '192.168.129.1' } }),
    'networks.secure.dhcp',
    'expected start <= end, found start 192.168.200.1 after end 192.168.129.1',
  ],
  [
    'DHCP range containing the gateway',
    secure({ dhcp: { start: '192.168.128.1', end: '192.168.129.1' } }),
    'networks.secure.dhcp',
    'expected a range that leaves out the gateway 192.168.128.1, found 192.168.128.1-192.168.129.1',
  ],
  [
    'DHCP end outside the subnet',
    secure({ dhcp: { start: '192.168.129.1', end: '192.169.0.10' } }),
    'networks.secure.dhcp.end',
    'expected a host address of 192.168.128.0/17 (192.168.128.1-192.168.255.254), found 192.169.0.10',
  ],
  [
    'two networks on one VLAN',
    { networks: { secure: { preset: 'secure' }, service: { preset: 'service', vlan: 1081 } } },
    'networks.service.vlan',
    'expected a VLAN no other network uses, found 1081, already used by networks.secure',
  ],
  [
    'two networks on one bridge',
    { networks: { secure: { preset: 'secure' }, service: { preset: 'service', bridge: 'br-secure' } } },
    'networks.service.bridge',
    'expected a bridge of its own, found "br-secure", already used by networks.secure',
  ],
  [
    'overlapping subnets',
    {
      networks: {
        secure: { preset: 'secure' },
        service: {
          preset: 'service',
          subnet: '192.168.200.0/24',
          gateway: '192.168.200.1',
          dhcp: { start: '192.168.200.3', end: '192.168.200.9' },
        },
      },
    },
    'networks.service.subnet',
    'expected a subnet that overlaps no other network, found 192.168.200.0/24, overlapping networks.secure.subnet 192.168.128.0/17',
  ],
  [
    'invalid MAC in a reservation',
    secure({ reservations: [{ mac: '52:54:00:zz:00:01', ip: '192.168.129.9' }] }),
    'networks.secure.reservations[0].mac',
    'expected a unicast MAC address like 52:54:00:12:34:56, found "52:54:00:zz:00:01"',
  ],
  [
    'multicast MAC in a reservation',
    secure({ reservations: [{ mac: '01:00:5e:00:00:01', ip: '192.168.129.9' }] }),
    'networks.secure.reservations[0].mac',
    'expected a unicast MAC address like 52:54:00:12:34:56, found "01:00:5e:00:00:01"',
  ],
  [
    'duplicate MAC reservations (case-insensitive)',
    secure({
      reservations: [
        { mac: '52:54:00:AA:00:01', ip: '192.168.129.9' },
        { mac: '52:54:00:aa:00:01', ip: '192.168.129.10' },
      ],
    }),
    'networks.secure.reservations[1].mac',
    'expected a mac unique within the network, found 52:54:00:aa:00:01 again (first at reservations[0])',
  ],
  ['unknown field', secure({ vlna: 1 }), 'networks.secure.vlna', 'unknown field (not part of the site schema)'],
  [
    'custom kind without policies',
    {
      networks: {
        lab: {
          kind: 'lab',
          bridge: 'br-lab',
          vlan: 1090,
          subnet: '10.90.0.0/24',
          gateway: '10.90.0.1',
          dhcp: { start: '10.90.0.10', end: '10.90.0.20' },
        },
      },
    },
    'networks.lab.egress',
    'expected a declared policy for custom kind "lab" (well-known kinds: secure, service, datain), found nothing',
  ],
  [
    'controlled DNS on a network with open egress',
    {
      networks: {
        lab: {
          kind: 'lab',
          egress: 'open',
          dns: 'controlled',
          bridge: 'br-lab',
          vlan: 1090,
          subnet: '10.90.0.0/24',
          gateway: '10.90.0.1',
          dhcp: { start: '10.90.0.10', end: '10.90.0.20' },
        },
      },
    },
    'networks.lab.dns',
    "expected 'open' DNS on a network with \"open\" egress (controlled DNS needs 'allow-list' egress), found 'controlled'",
  ],
  [
    'secure kind with open egress',
    secure({ egress: 'open' }),
    'networks.secure.egress',
    'expected \'allow-list\' egress and \'controlled\' DNS on a network of kind secure, found egress "open" and dns "controlled"',
  ],
  [
    'an unknown peers policy',
    secure({ peers: 'everyone' }),
    'networks.secure.peers',
    "expected 'all', 'gateway' or 'groups', found \"everyone\"",
  ],
  [
    'link-local IPv6 with peers kept apart',
    secure({ ipv6: 'link-local' }),
    'networks.secure.ipv6',
    'expected \'off\' with peers "gateway" (link-local IPv6 reaches only other VMs, which peers "gateway" keeps apart), found "link-local"',
  ],
  [
    'a multicast gateway MAC',
    secure({ gatewayMac: '01:00:5e:00:00:01' }),
    'networks.secure.gatewayMac',
    'expected a unicast MAC address like 52:54:00:12:34:56, found "01:00:5e:00:00:01"',
  ],
  [
    'derived VLAN interface name too long',
    secure({ uplink: { parent: 'enp175s0f0np0' } }),
    'networks.secure.uplink.interface',
    'expected an interface name of at most 15 characters, found "enp175s0f0np0.1081" (derived from uplink.parent and vlan; set uplink.interface explicitly)',
  ],
  [
    'two default portgroups',
    secure({
      portgroups: [
        { name: 'a', default: true },
        { name: 'b', default: true },
      ],
    }),
    'networks.secure.portgroups[1].default',
    'expected at most one default portgroup, found a second (first at portgroups[0])',
  ],
  [
    'portgroup on another VLAN, vlan-mode uplink (nothing carries it)',
    secure({ portgroups: [{ name: 'batch', vlan: 2090 }] }),
    'networks.secure.portgroups[0].vlan',
    "expected the network's VLAN 1081 (or no vlan), found 2090: on a vlan-mode uplink nothing carries VLAN 2090 off the host (bond0.1081 carries only 1081)",
  ],
  [
    'portgroup on another VLAN, trunk-mode uplink (the backend serves only the network VLAN)',
    secure({ uplink: { mode: 'trunk' }, portgroups: [{ name: 'batch', vlan: 2090 }] }),
    'networks.secure.portgroups[0].vlan',
    "expected the network's VLAN 1081 (or no vlan), found 2090: the backend serves this network (DHCP, gateway, DNS) only on VLAN 1081 (bond0.1081), so VMs on VLAN 2090 would reach nothing",
  ],
  [
    'the same MAC reserved on two networks',
    {
      networks: {
        secure: { preset: 'secure', reservations: [{ mac: '52:54:00:00:00:10', ip: '192.168.129.10' }] },
        service: { preset: 'service', reservations: [{ mac: '52:54:00:00:00:10', ip: '192.168.122.10' }] },
      },
    },
    'networks.service.reservations[0].mac',
    'expected a MAC no other network reserves (the backend holds one registration per MAC), found 52:54:00:00:00:10, already reserved by networks.secure.reservations[0]',
  ],
  [
    'management address inside a VM network',
    { backend: { management: { address: '192.168.122.5' } } },
    'backend.management.address',
    'expected an address outside every VM network (the API must not be reachable from VMs), found 192.168.122.5 inside networks.service.subnet 192.168.122.0/24',
  ],
  [
    'a lease time too short',
    secure({ dhcp: { start: '192.168.129.1', end: '192.168.129.9', leaseTime: '30s' } }),
    'networks.secure.dhcp.leaseTime',
    "expected a lease time like '12h', '30m', '3600' or 'infinite' (at least 2m), found \"30s\"",
  ],
  [
    'a boot file with a comma (would split the dnsmasq line)',
    secure({ dhcp: { start: '192.168.129.1', end: '192.168.129.9', bootFile: 'http://x/boot.ipxe,evil' } }),
    'networks.secure.dhcp.bootFile',
    'expected a boot file name or URL like http://198.51.100.10/boot.ipxe (no spaces, commas or quotes), found "http://x/boot.ipxe,evil"',
  ],
  [
    'an SSH port range that holds the API port',
    secure({ ssh: { ports: '8000-9000' } }),
    'networks.secure.ssh.ports',
    'expected a port range that leaves out the API port (backend.management.port 8443), found 8000-9000',
  ],
  [
    'SSH port ranges of two networks overlapping',
    {
      networks: {
        secure: { preset: 'secure', ssh: { ports: '22000-22999' } },
        service: { preset: 'service', ssh: { ports: '22500-23000' } },
      },
    },
    'networks.service.ssh.ports',
    "expected a port range no other network's SSH access uses, found 22500-23000, overlapping networks.secure.ssh.ports 22000-22999",
  ],
  [
    'an SSH port range running backwards',
    secure({ ssh: { ports: '3000-2000' } }),
    'networks.secure.ssh.ports',
    'expected a port 1-65535 or a range like \'8000-8100\', found "3000-2000"',
  ],
  [
    'an SSH address inside a VM network',
    secure({ ssh: { address: '192.168.128.1' } }),
    'networks.secure.ssh.address',
    'expected an address outside every VM network (clients come through the uplink), found 192.168.128.1 inside networks.secure.subnet 192.168.128.0/17',
  ],
  [
    'SSH access with no client network',
    secure({ ssh: { sources: [] } }),
    'networks.secure.ssh.sources',
    'expected at least one client network (to turn SSH access off, set enabled: false), found none',
  ],
  [
    'an SSH source with host bits',
    secure({ ssh: { sources: ['203.0.113.7/24'] } }),
    'networks.secure.ssh.sources[0]',
    'expected the network address (203.0.113.0/24), found "203.0.113.7/24"',
  ],
  [
    'an unknown SSH field',
    secure({ ssh: { port: 2222 } }),
    'networks.secure.ssh.port',
    'unknown field (not part of the site schema)',
  ],
  ['no networks at all', { networks: {} }, 'networks', 'expected at least one network, found none'],
  [
    'networks given as a list',
    { networks: [{ preset: 'secure' }] },
    'networks',
    'expected a map of network name to network settings, found a list of 1',
  ],
];

describe('invalid sites', () => {
  it.each(cases)('%s', (_name, input, path, message) => {
    const result = checkSite(input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues[0]).toEqual({ path, message });
  });

  it('throws a SiteError with code E_SITE_INVALID listing every issue', () => {
    const input = secure({ vlan: 0, bridge: '', gateway: 'x' });
    expect(() => parseSite(input, 'site.yaml')).toThrow(SiteError);
    try {
      parseSite(input, 'site.yaml');
    } catch (error) {
      const siteError = error as SiteError;
      expect(siteError.code).toBe('E_SITE_INVALID');
      expect(siteError.issues.map((i) => i.path)).toEqual([
        'networks.secure.bridge',
        'networks.secure.vlan',
        'networks.secure.gateway',
      ]);
      expect(siteError.message.split('\n')[0]).toBe('Invalid site (3 errors) in site.yaml:');
    }
  });

  it('collects errors from several networks at once, shape and meaning alike', () => {
    const result = checkSite({
      networks: { secure: { preset: 'secure', vlan: 9999 }, service: { preset: 'service', gateway: '10.1.1.1' } },
    });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues.map((i) => i.path)).toEqual(['networks.secure.vlan', 'networks.service.gateway']);
  });
});
