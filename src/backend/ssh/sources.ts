/**
 * Who may connect to a VM's forwarded SSH port: the network's client networks
 * from the site, narrowed per VM by an admin. Pure. A VM's narrowing never
 * widens what the site allows: it is checked against the site when set, and
 * intersected with the site's when enforced (the site may have narrowed since).
 */
import { SshAccessError } from '../../errors/ssh-access-error.js';
import { intToIpv4, parseIpv4Cidr, type Ipv4Subnet } from '../../site/address.js';
import type { Site, SshAccess } from '../../site/model.js';
import type { NicSsh } from '../nft/ssh.js';

function subnet(cidr: string): Ipv4Subnet {
  const parsed = parseIpv4Cidr(cidr.includes('/') ? cidr : `${cidr}/32`);
  if (parsed === undefined) throw new TypeError(`not an IPv4 network: ${cidr}`);
  return parsed;
}

const inside = (inner: Ipv4Subnet, outer: Ipv4Subnet) => outer.first <= inner.first && inner.last <= outer.last;
const text = (s: Ipv4Subnet) => `${intToIpv4(s.first)}/${s.prefix}`;

/**
 * The addresses in both lists, as networks (two networks either nest or are
 * disjoint, so each part of the result is one of theirs), without duplicates,
 * in the order of `narrowed`.
 *
 * @example intersectSources(['10.0.0.0/8'], ['10.1.0.0/16', '192.0.2.0/24']) // ['10.1.0.0/16']
 */
export function intersectSources(site: readonly string[], narrowed: readonly string[]): string[] {
  const allowed = site.map(subnet);
  const result = new Set<string>();
  for (const own of narrowed.map(subnet)) {
    if (allowed.some((a) => inside(own, a))) result.add(text(own));
    else for (const a of allowed) if (inside(a, own)) result.add(text(a));
  }
  return [...result];
}

/**
 * A NIC's client networks on a network with SSH access `access`: the site's,
 * or, when its VM's are narrowed (`vmSources`), their intersection with the site's.
 */
export function nicSources(
  access: SshAccess,
  vmSources: readonly string[] | undefined,
): Pick<NicSsh, 'sources' | 'narrowed'> {
  if (vmSources === undefined) return { sources: [...access.sources], narrowed: false };
  return { sources: intersectSources(access.sources, vmSources), narrowed: true };
}

/**
 * Check a VM's narrowed client networks against the site: each must lie
 * inside the sources of some network with SSH access.
 *
 * @throws {SshAccessError} `E_SSH_SOURCES_OUTSIDE`, naming the first that does not.
 */
export function checkNarrowing(site: Site, sources: readonly string[]): void {
  const withSsh = site.networks.flatMap((n) => (n.ssh ? [{ name: n.name, sources: n.ssh.sources }] : []));
  for (const source of sources) {
    const own = subnet(source);
    if (withSsh.some((n) => n.sources.some((s) => inside(own, subnet(s))))) continue;
    const allowed =
      withSsh.length === 0
        ? 'no network has SSH access'
        : withSsh.map((n) => `networks.${n.name}.ssh.sources ${n.sources.join(', ')}`).join('; ');
    throw new SshAccessError(
      'E_SSH_SOURCES_OUTSIDE',
      `SSH sources: expected client networks inside what the site allows (${allowed}), found ${source}`,
    );
  }
}
