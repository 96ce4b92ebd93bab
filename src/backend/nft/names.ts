/**
 * The names inside `table inet ticrypt`: the table, its sets, maps, chains and
 * counters, and the per-domain sets dnsmasq fills. One place, so the full
 * ruleset, the incremental transactions and dnsmasq's config agree.
 */
import { createHash } from 'node:crypto';
import { nftCheck } from '../checks.js';
import { NFT_TABLE_REF } from '../../names.js';

/** The nftables family and table every ticrypt rule lives in: `inet ticrypt`. */
export const TABLE = NFT_TABLE_REF;

/** Registered `iifname . ether_addr . ipv4_addr` triples of NICs on allow-list networks. */
export const REGISTERED_SET = 'registered';

/**
 * Triples of NICs deregistered but whose elements are not deleted yet: matched
 * first, with drop. Adding to it is the fast way to cut a NIC off (deleting
 * set elements costs a fixed ~15-20 ms per transaction here); the deletions
 * follow in a batch.
 */
export const REVOKED_SET = 'revoked';

/** The map of backend TCP port to VM address: DNAT to that VM's port 22. */
export const SSH_FORWARDS_MAP = 'ssh_forwards';

/** The chain holding one group of rules per distinct allowed domain. */
export const DOMAINS_CHAIN = 'domains';

/** Named counters, readable with `nft list counter inet ticrypt NAME`, for audit. */
export const COUNTERS = {
  /** Secure egress from a MAC/IP pair that is not registered. */
  unregistered: 'dropped_unregistered',
  /** Secure egress to a destination not on the VM's allow-list. */
  egress: 'dropped_egress',
  /** DNS (port 53) to anything but the backend's resolver, from a controlled-DNS network. */
  dns: 'dropped_dns',
  /** Forwarding between VM networks or to anything but the uplink. */
  cross: 'dropped_cross',
  /** New connections into VM networks that are not SSH forwards. */
  inbound: 'dropped_inbound',
  /** Packets from VM networks to the backend itself that are not DHCP, DNS or ICMP to the gateway. */
  input: 'dropped_input',
} as const;

/** The log prefix of every ticrypt log rule (rate-limited, optional). */
export const LOG_PREFIX = 'ticrypt';

function domainHash(domain: string): string {
  return createHash('sha256').update(nftCheck.domain('domain', domain)).digest('hex').slice(0, 16);
}

/**
 * The name of the nft set of addresses dnsmasq learns for `domain`
 * (`ipv4_addr`, `flags timeout`): `d_` and 16 hex digits of its SHA-256.
 * Deterministic, and safe in nft and dnsmasq whatever the domain.
 *
 * @throws {NftInputError} `E_NFT_INPUT` when `domain` is not a lower-case domain name.
 * @example domainSetName('pypi.org') // 'd_' + 16 hex digits, the same every time
 */
export function domainSetName(domain: string): string {
  return `d_${domainHash(domain)}`;
}

/**
 * The name of the set of VM keys allowed to reach `domain` in one key shape
 * (see `PORT_SHAPES`): `m_<hash>_<shape>`.
 */
export function domainMemberSetName(domain: string, shape: string): string {
  return `m_${domainHash(domain)}_${shape}`;
}

/**
 * The value of dnsmasq's `--nftset` for `domain`: `4#inet#ticrypt#<set>`.
 *
 * @example `--nftset=/pypi.org/${dnsmasqNftset('pypi.org')}`
 */
export function dnsmasqNftset(domain: string): string {
  return `4#inet#ticrypt#${domainSetName(domain)}`;
}
