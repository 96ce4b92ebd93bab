import fc from 'fast-check';
import { execa } from 'execa';
import type { AllowEntry, AllowList, Registration } from '../../../src/protocol/api.js';
import { intToIpv4 } from '../../../src/site/address.js';
import { parseSite } from '../../../src/site/parse.js';
import type { Site } from '../../../src/site/model.js';

/** A registration on `network` for VM `n` (MAC and IP derived from n). */
export function registration(n: number, network = 'secure', vmUuid = `vm-${n}`): Registration {
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  const ip = network === 'secure' ? `192.168.${129 + (n >> 8)}.${n & 255}` : `192.168.122.${(n % 250) + 3}`;
  return {
    hostId: 'host-1',
    vmUuid,
    vmName: `vm${n}`,
    mac: `52:54:00:${hex((n >> 16) & 255)}:${hex((n >> 8) & 255)}:${hex(n & 255)}`,
    network,
    ip,
    generation: 1,
    nicId: network === 'secure' ? n + 1 : 100_000 + n,
  };
}

/** A few allow entries of every kind. */
export const SAMPLE_ENTRIES: readonly AllowEntry[] = [
  { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } },
  { type: 'address', address: '198.51.100.0/22', protocol: 'tcp', ports: { from: 1000, to: 1100 } },
  { type: 'address', address: '203.0.113.0/24', protocol: 'icmp' },
  { type: 'address', address: '192.0.2.0/17', protocol: 'any' },
  { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } },
];

const portRange = fc
  .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 300 }))
  .map(([from, span]) => ({ from, to: Math.min(65535, from + span) }));

/** Random valid allow entries. */
export const allowEntry: fc.Arbitrary<AllowEntry> = fc.oneof(
  fc
    .record({
      address: fc
        .tuple(fc.ipV4(), fc.integer({ min: 8, max: 32 }))
        .map(([ip, prefix]) => (prefix === 32 ? ip : `${ip}/${prefix}`)),
      ports: fc.option(portRange, { nil: undefined }),
      protocol: fc.constantFrom('tcp', 'udp', 'icmp', 'any') as fc.Arbitrary<'tcp' | 'udp' | 'icmp' | 'any'>,
    })
    .map(({ address, ports, protocol }): AllowEntry =>
      ports === undefined || protocol === 'icmp' || protocol === 'any'
        ? { type: 'address', address, protocol }
        : { type: 'address', address, protocol, ports },
    ),
  fc
    .record({
      domain: fc.constantFrom('pypi.org', 'files.pythonhosted.org', 'github.com', 'example.org'),
      protocol: fc.constantFrom('tcp', 'udp') as fc.Arbitrary<'tcp' | 'udp'>,
      ports: fc.option(portRange, { nil: undefined }),
    })
    .map(({ domain, protocol, ports }): AllowEntry =>
      ports === undefined ? { type: 'domain', domain, protocol } : { type: 'domain', domain, protocol, ports },
    ),
);

/** A client network SSH access may be narrowed to: any IPv4 network, 0.0.0.0/0 included. */
export const sshSource: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
  .map(([address, prefix]) => {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return `${intToIpv4((address & mask) >>> 0)}/${prefix}`;
  });

/** Random valid sites: one to four networks with varied names, VLANs, subnets, policies and SSH access. */
export const siteArbitrary: fc.Arbitrary<Site> = fc
  .record({
    count: fc.integer({ min: 1, max: 4 }),
    names: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_-]{0,9}$/), { minLength: 4, maxLength: 4 }),
    vlanBase: fc.integer({ min: 2, max: 4000 }),
    policies: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    ssh: fc.array(fc.constantFrom('off', 'any address', 'one address'), { minLength: 4, maxLength: 4 }),
    uplink: fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/),
    log: fc.boolean(),
  })
  .map(({ count, names, vlanBase, policies, ssh, uplink }) => {
    const networks: Record<string, unknown> = {};
    for (let i = 0; i < count; i += 1) {
      const secure = policies[i] === true;
      networks[names[i] as string] = {
        kind: secure ? 'secure' : 'service',
        bridge: `br-${i}`,
        vlan: vlanBase + i,
        subnet: `10.${i}.0.0/16`,
        gateway: `10.${i}.0.1`,
        dhcp: { start: `10.${i}.1.1`, end: `10.${i}.255.254` },
        egress: secure ? 'allow-list' : 'open',
        dns: secure ? 'controlled' : 'open',
        ssh:
          ssh[i] === 'off'
            ? { enabled: false }
            : {
                enabled: true,
                ports: `${20000 + i * 1000}-${20999 + i * 1000}`,
                ...(ssh[i] === 'one address' ? { address: `203.0.113.${i + 1}`, sources: ['198.51.100.0/24'] } : {}),
              },
      };
    }
    return parseSite({ backend: { uplink: `up${uplink}`, trunk: 'tr' }, networks });
  });

/** An allow-list for each registration's VM. */
export function allowLists(registrations: readonly Registration[], entries: readonly AllowEntry[]): AllowList[] {
  return [...new Set(registrations.map((r) => r.vmUuid))].map((vmUuid) => ({ vmUuid, entries }));
}

interface NftJsonItem {
  set?: { name: string; table: string; elem?: unknown[] };
  map?: { name: string; table: string; elem?: unknown[] };
}

/** What a test compares between two kernels: every set's and map's elements (sorted), of table inet ticrypt. */
export async function tableContents(netns: string): Promise<Record<string, string[]>> {
  const { stdout } = await execa('ip', ['netns', 'exec', netns, 'nft', '-j', 'list', 'table', 'inet', 'ticrypt']);
  const items = (JSON.parse(stdout) as { nftables: NftJsonItem[] }).nftables;
  const contents: Record<string, string[]> = {};
  for (const item of items) {
    const set = item.set ?? item.map;
    if (set) contents[`set ${set.name}`] = (set.elem ?? []).map((e) => JSON.stringify(e)).sort();
  }
  return contents;
}
