import { createHash } from 'node:crypto';

/**
 * Stand-in for the nftables module's `domainSetName` (src/backend/nft/names.ts):
 * the name of the `inet ticrypt` set that holds the IPv4 addresses dnsmasq
 * resolved for an allowed domain. Deterministic, collision-safe (a hash, since
 * `a-b.org` and `a.b.org` must differ), and short enough for any kernel.
 *
 * @example fallbackDomainSetName('pypi.org') // 'd_' + 20 hex digits
 */
export function fallbackDomainSetName(domain: string): string {
  return `d_${createHash('sha256').update(domain).digest('hex').slice(0, 20)}`;
}
