/**
 * Special-use IPv4 addresses: anything ipaddr.js does not call `unicast`
 * (private, loopback, link-local, carrier-grade NAT, multicast, broadcast,
 * unspecified, reserved, documentation and benchmarking ranges, AS112, AMT).
 * An answer naming one opens nothing unless the entry names its range.
 */
import ipaddr from 'ipaddr.js';
import { isIpv4, parseIpv4Cidr, subnetContains, type Ipv4Subnet } from '../../site/address.js';

/** Whether `address` (dotted quad) is in a special-use range. */
export function isSpecialUse(address: string): boolean {
  return ipaddr.IPv4.parse(address).range() !== 'unicast';
}

/** The IPv4 range a CIDR or bare address names (a bare address is a /32). */
export function parseRange(text: string): Ipv4Subnet | undefined {
  return isIpv4(text) ? parseIpv4Cidr(`${text}/32`) : parseIpv4Cidr(text);
}

/** Whether one of `ranges` contains `address`. */
export function inRanges(ranges: readonly Ipv4Subnet[], address: string): boolean {
  return ranges.some((range) => subnetContains(range, address));
}
