/**
 * The names inside `table inet ticrypt`: the table, its sets, maps, chains and
 * counters. One place, so the full ruleset, the incremental transactions and
 * the DNS front's opens agree.
 */
import { NFT_TABLE, NFT_TABLE_REF } from '../../names.js';

export { MAX_NIC_ID, NIC_ID_MASK, markText } from './marks.js';

/** The nftables family and table every ticrypt rule lives in: `inet ticrypt`. */
export const TABLE = NFT_TABLE_REF;

/**
 * The small table of the data-plane counters, `inet ticrypt_counters` (see
 * `counter-table.ts`): replaced with the main table in one `nft -f`, read
 * with `nft -j list table` without nft fetching the main table's elements.
 */
export const COUNTER_TABLE = `${NFT_TABLE.family} ${NFT_TABLE.name}_counters` as const;

/**
 * The registered NICs of allow-list networks: `iifname . ether_addr . ipv4_addr : mark`,
 * each triple mapped to its NIC id. A packet from an allow-list network whose
 * triple is not here is dropped; one that is carries the id in `meta mark`,
 * and the id becomes the `ct mark` of the flows the table accepts for it.
 */
export const NIC_IDS_MAP = 'nic_ids';

/**
 * The same NICs as `iifname . ipv4_addr . mark` (interface, address, id): an
 * established packet of an allow-list network is accepted only when its flow's
 * `ct mark` is the id of the NIC it comes from (`iifname . ip saddr . ct mark`)
 * or goes to (`oifname . ip daddr . ct mark`), so no other network, host or
 * spoofer can open a flow for a NIC.
 */
export const NIC_FLOWS_SET = 'nic_flows';

/**
 * Ids of NICs deregistered but whose elements are not deleted yet: their
 * packets are dropped first. Adding an id is the fast way to cut a NIC off
 * (deleting set elements costs a fixed ~15-20 ms per transaction here); the
 * deletions follow in a batch.
 */
export const REVOKED_SET = 'revoked';

/** SSH access: the map of backend TCP port to a NIC's address, DNAT to its port 22. */
export const SSH_FORWARDS_MAP = 'ssh_forwards';

/** SSH access: the map of backend TCP port to the NIC's id, the forwarded flow's `ct mark` (its owner). */
export const SSH_OWNERS_MAP = 'ssh_owners';

/** SSH access: the ids of NICs whose VM's client networks an admin narrowed (checked in `ssh_src_*`). */
export const SSH_NARROWED_SET = 'ssh_narrowed';

/** The prerouting chain (priority mangle) that validates sources and sets the fail-closed mark bit. */
export const SOURCE_CHAIN = 'source';

/** Site-wide named counters of {@link COUNTER_TABLE} (`nft list counter inet ticrypt_counters NAME`). */
export const COUNTERS = {
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
  /** Established packets of an allow-list network whose flow the table did not accept for that NIC. */
  unowned: 'dropped_unowned_flow',
  /** A VM network's source address arriving on an interface other than that network's. */
  spoofedElsewhere: 'dropped_spoofed_other',
  /** A connection to a forwarded SSH port from a client outside the allowed sources. */
  sshSource: 'dropped_ssh_source',
} as const;

/**
 * A network's own counters: `dropped_spoofed_<net>` (a source address outside
 * the network's subnet) and, on an allow-list network,
 * `dropped_unregistered_<net>` (an `interface . MAC . IP` that is not
 * registered, or revoked).
 */
export function networkCounters(network: string): { spoofed: string; unregistered: string } {
  return { spoofed: `dropped_spoofed_${network}`, unregistered: `dropped_unregistered_${network}` };
}

/** The log prefix of every ticrypt log rule (rate-limited, optional). */
export const LOG_PREFIX = 'ticrypt';

/**
 * Why a VM network's packet was dropped past its source chain, each with a
 * site-wide counter (`COUNTERS`) and one per network (`dropped_<reason>.<network>`).
 * `spoofed` and `unregistered` have their network's own counters already
 * ({@link networkCounters}).
 */
export const DROP_REASONS = {
  egress: COUNTERS.egress,
  dns: COUNTERS.dns,
  cross: COUNTERS.cross,
  inbound: COUNTERS.inbound,
  input: COUNTERS.input,
  unowned_flow: COUNTERS.unowned,
  ssh_source: COUNTERS.sshSource,
} as const;

/** A reason a packet past its network's source chain is dropped for (a key of {@link DROP_REASONS}). */
export type DropReason = keyof typeof DROP_REASONS;

/** Which end of a packet names the network it is counted for: where it came from, or where it goes. */
export type CountedSide = 'from' | 'to';

/**
 * The chain a drop of `reason` goes to: it counts the packet for its network
 * (by `iifname` for `from`, `oifname` for `to`), then site-wide, and drops;
 * a packet whose interface names no network is still counted and dropped.
 *
 * @example dropChainName('egress', 'from') // 'drop_egress_from'
 */
export function dropChainName(reason: DropReason, side: CountedSide): string {
  return `drop_${reason}_${side}`;
}

/**
 * A network's data-plane counters, named `<kind>.<network>` (a network's name
 * has no dot, so no two networks' names meet): packets the table accepted
 * from the network's VMs (forwarded), to them (forwarded) and to the gateway
 * itself (DHCP, DNS, ICMP), the first packets of flows it accepted each way,
 * and its drops by reason.
 *
 * @example trafficCounters('secure').dropped.egress // 'dropped_egress.secure'
 */
export function trafficCounters(network: string): {
  acceptedFrom: string;
  acceptedTo: string;
  acceptedLocal: string;
  flowsFrom: string;
  flowsTo: string;
  dropped: Record<DropReason, string>;
} {
  const dropped = Object.fromEntries(
    Object.entries(DROP_REASONS).map(([reason, counter]) => [reason, `${counter}.${network}`]),
  ) as Record<DropReason, string>;
  return {
    acceptedFrom: `accepted_from_vms.${network}`,
    acceptedTo: `accepted_to_vms.${network}`,
    acceptedLocal: `accepted_to_gateway.${network}`,
    flowsFrom: `flows_from_vms.${network}`,
    flowsTo: `flows_to_vms.${network}`,
    dropped,
  };
}
