/**
 * SSH access through the backend in `table inet ticrypt`: a backend TCP port
 * per registered NIC, forwarded (DNAT) to the NIC's port 22. Pure renderers
 * of the elements and rules; every value re-checked.
 *
 * Per NIC, two map elements keyed by its port: `ssh_forwards` (port → the
 * NIC's address, the DNAT target) and `ssh_owners` (port → the NIC's id, set
 * as the flow's `ct mark` by the same rule), so a forwarded flow is owned by
 * its NIC like any flow the table accepted for it (issue 9: established
 * packets pass only with the NIC's own id, both ways; a revoked id is
 * dropped). Clients are checked once, on the flow's first packet in the
 * forward path: the network's site sources, or for a VM an admin narrowed,
 * its own blocks (`ssh_narrowed` holds its NICs' ids; `ssh_src_<bits>` its
 * client networks as aligned blocks keyed by id, looked up with the source
 * masked, as the allow sets are). So a change is a few element adds and
 * deletes, whatever the number of VMs.
 */
import { nftCheck } from '../checks.js';
import { intToIpv4, type Ipv4Subnet } from '../../site/address.js';
import type { Network, Site, SshAccess } from '../../site/model.js';
import { admitted, auditedNetworks, ctNicId, type AuditRuleOptions } from './audit.js';
import type { AllowEntry, Registration } from '../../protocol/api.js';
import { dedupe, nicElements, nicIdText, registrationNetwork, type NftElement } from './elements.js';
import { dropChainName, SSH_FORWARDS_MAP, SSH_NARROWED_SET, SSH_OWNERS_MAP } from './names.js';
import { IP_LEVELS, ipMask } from './shapes.js';

/** A NIC's SSH access as the firewall enforces it. */
export interface NicSsh {
  /** The backend TCP port forwarded to the NIC's port 22 (one of its network's `ssh.ports`). */
  readonly port: number;
  /** The client networks that may connect: the network's site sources, or the VM's narrowing of them. */
  readonly sources: readonly string[];
  /** Whether an admin narrowed the VM's sources (they are then enforced per NIC; else per network). */
  readonly narrowed: boolean;
}

/** The chain a forwarded flow's first packet is checked in (clients), and the one for narrowed VMs. */
export const SSH_CHAINS = { clients: 'ssh_in', narrowed: 'ssh_narrowed', local: 'ssh_local' } as const;

/** The set of a narrowed VM's client blocks of one prefix length: `ssh_src_24`. */
export function sshSourceSetName(bits: number): string {
  return `ssh_src_${bits}`;
}

/**
 * Aligned address blocks covering a subnet exactly, at the prefix lengths that
 * have sets (multiples of 4): a /17 is eight /20s, at most eight blocks.
 */
export function addressBlocks(subnet: Ipv4Subnet): { readonly ipBits: number; readonly base: number }[] {
  const ipBits = IP_LEVELS.find((level) => level >= subnet.prefix && level < subnet.prefix + 4) ?? 32;
  const step = 2 ** (32 - ipBits);
  const blocks: { ipBits: number; base: number }[] = [];
  for (let base = subnet.first; base <= subnet.last; base += step) blocks.push({ ipBits, base });
  return blocks;
}

/** The network's SSH access, or a refusal naming it. */
function sshOf(network: Network): SshAccess {
  if (network.ssh === undefined) throw nftCheck.refuse('ssh', `a network with SSH access`, network.name);
  return network.ssh;
}

/**
 * The elements a NIC's SSH access puts in the table: its forward and owner
 * (keyed by its port), and, when its VM's sources are narrowed, its id in
 * `ssh_narrowed` and its client blocks.
 *
 * @throws {NftInputError} `E_NFT_INPUT` when the network has no SSH access, the port lies outside its range,
 * or any value fails its check.
 */
export function sshElements(site: Site, registration: Registration, ssh: NicSsh): NftElement[] {
  const access = sshOf(registrationNetwork(site, registration));
  const port = nftCheck.integer('ssh.port', ssh.port, access.ports.from, access.ports.to);
  const id = nicIdText(registration.nicId);
  const elements: NftElement[] = [
    { set: SSH_FORWARDS_MAP, key: String(port), value: nftCheck.ipv4('ip', registration.ip) },
    { set: SSH_OWNERS_MAP, key: String(port), value: id },
  ];
  if (!ssh.narrowed) return elements;
  elements.push({ set: SSH_NARROWED_SET, key: id });
  for (const source of ssh.sources) {
    for (const { ipBits, base } of addressBlocks(nftCheck.destination('ssh.sources', source))) {
      elements.push({ set: sshSourceSetName(ipBits), key: ipBits === 0 ? id : `${id} . ${intToIpv4(base)}` });
    }
  }
  return elements;
}

/**
 * Every element a registered NIC puts in the table: its identity and allow
 * entries ({@link nicElements}), and its SSH access when it has one.
 */
export function nicAccessElements(
  site: Site,
  nic: { readonly registration: Registration; readonly entries: readonly AllowEntry[]; readonly ssh?: NicSsh },
): NftElement[] {
  const own = nicElements(site, nic.registration, nic.entries);
  return nic.ssh === undefined ? own : dedupe([...own, ...sshElements(site, nic.registration, nic.ssh)]);
}

/** The set and map blocks of SSH access, each filled with `keys(name)`. */
export function sshSets(
  setBlock: (name: string, type: string, keys: readonly string[]) => string,
  keys: (name: string) => string[],
): string[] {
  return [
    setBlock(SSH_FORWARDS_MAP, 'inet_service : ipv4_addr', keys(SSH_FORWARDS_MAP)),
    setBlock(SSH_OWNERS_MAP, 'inet_service : mark', keys(SSH_OWNERS_MAP)),
    setBlock(SSH_NARROWED_SET, 'mark', keys(SSH_NARROWED_SET)),
    ...IP_LEVELS.map((bits) =>
      setBlock(sshSourceSetName(bits), bits === 0 ? 'mark' : 'mark . ipv4_addr', keys(sshSourceSetName(bits))),
    ),
  ];
}

/** `{ 203.0.113.0/24, ... }`, or nothing for a list that holds 0.0.0.0/0 (every source). */
function sourceMatch(sources: readonly string[]): string {
  const subnets = sources.map((s) => nftCheck.destination('ssh.sources', s));
  if (subnets.some((s) => s.prefix === 0)) return '';
  return ` ip saddr { ${subnets.map((s) => `${intToIpv4(s.first)}/${s.prefix}`).join(', ')} }`;
}

/**
 * The DNAT of one network's ports, for the prerouting (`iifname` the uplink)
 * or output (the backend's own connections) NAT chain: a port in the
 * `ssh_owners` map gets its NIC's id as `ct mark` and goes to its NIC's port
 * 22; any other port of the range is left alone (nothing listens: refused).
 */
function dnatRule(network: Network, prefix: string): string {
  const access = sshOf(network);
  const from = nftCheck.port('ssh.ports.from', access.ports.from);
  const to = nftCheck.port('ssh.ports.to', access.ports.to);
  const address =
    access.address === undefined
      ? 'fib daddr type local ip daddr != 127.0.0.0/8'
      : `ip daddr ${nftCheck.ipv4('ssh.address', access.address)}`;
  const ports = from === to ? String(from) : `${from}-${to}`;
  return `${prefix}${address} tcp dport ${ports} ct mark set tcp dport map @${SSH_OWNERS_MAP} dnat ip to tcp dport map @${SSH_FORWARDS_MAP} : 22`;
}

/** The networks of the site with SSH access. */
export function sshNetworks(site: Site): Network[] {
  return site.networks.filter((n) => n.ssh !== undefined);
}

/** The rules of the prerouting NAT chain: clients arriving on the uplink. */
export function sshPreroutingRules(site: Site): string[] {
  const uplink = nftCheck.interfaceName('backend.uplink', site.backend.uplink);
  return sshNetworks(site).map((n) => dnatRule(n, `iifname "${uplink}" `));
}

/** The output NAT chain: the backend's own programs connecting to a forwarded port. */
export function sshLocalChain(site: Site): string[] {
  return ['type nat hook output priority -100; policy accept;', ...sshNetworks(site).map((n) => dnatRule(n, ''))];
}

/**
 * The rules of the chain a forwarded flow's first packet goes to: a narrowed
 * VM's NICs are checked against their own blocks, the rest against their
 * network's site sources; anything else is dropped and counted.
 */
export function sshClientRules(site: Site, audit?: AuditRuleOptions): string[] {
  const audited = new Set(auditedNetworks(site).map((n) => n.name));
  return [
    `${ctNicId(audit)} @${SSH_NARROWED_SET} goto ${SSH_CHAINS.narrowed}`,
    ...sshNetworks(site).map(
      (n) =>
        `oifname "${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}"${sourceMatch(sshOf(n).sources)}${audited.has(n.name) ? admitted(site, audit, 'ssh') : ''} accept`,
    ),
    `goto ${dropChainName('ssh_source', 'to')}`,
  ];
}

/** The rules for narrowed VMs: the client's address, masked per block size, with the flow's mark (the NIC's id). */
export function sshNarrowedRules(site?: Site, audit?: AuditRuleOptions): string[] {
  const id = ctNicId(audit);
  const bits = site === undefined ? '' : admitted(site, audit, 'ssh');
  return [
    ...IP_LEVELS.map((level) => {
      if (level === 0) return `${id} @${sshSourceSetName(0)}${bits} accept`;
      const source = level === 32 ? 'ip saddr' : `ip saddr & ${ipMask(level)}`;
      return `${id} . ${source} @${sshSourceSetName(level)}${bits} accept`;
    }),
    `goto ${dropChainName('ssh_source', 'to')}`,
  ];
}

/**
 * The `conntrack -D` filters that end a NIC's forwarded connections: all of
 * them (the NIC or its forward went), or those from client networks it lost.
 */
export function sshDeletions(ip: string, before: NicSsh, after: NicSsh | undefined): string[][] {
  const flows = [
    '-p',
    'tcp',
    '--orig-port-dst',
    String(nftCheck.port('ssh.port', before.port)),
    '--reply-src',
    nftCheck.ipv4('ip', ip),
  ];
  if (after === undefined || after.port !== before.port) return [flows];
  const kept = after.sources.map((s) => nftCheck.destination('ssh.sources', s));
  const deletions: string[][] = [];
  for (const source of before.sources) {
    const subnet = nftCheck.destination('ssh.sources', source);
    if (kept.some((k) => k.first <= subnet.first && subnet.last <= k.last)) continue;
    if (subnet.prefix === 0) return [flows];
    deletions.push([...flows, '-s', intToIpv4(subnet.first), '--mask-src', ipMask(subnet.prefix)]);
  }
  return deletions;
}
