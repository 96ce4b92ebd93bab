/**
 * `table inet ticrypt_counters`: the data-plane counters (issue 16) in a small
 * table of their own, so that reading them (`nft -j list table inet
 * ticrypt_counters`, ~40 ms) never makes nft 1.0.6 fetch the elements of the
 * main table's sets (it fetches every element of a table it lists anything
 * from: 10-20 s at 10,000 VMs). A rule cannot name another table's counter,
 * so the verdict travels in the packet: the main table's drop chains put the
 * drop's mark ({@link dropMark}) in `meta mark` and accept; this table's base
 * chains (priority + 10, no verdict) count the packet by that mark and by its
 * network, or as accepted when it carries none; the main table's
 * `drop_marked_*` chains (priority + 20) drop every marked packet, so
 * without this table the drops stay. Rendered into the same `nft -f` script
 * as the main table: both are replaced in one transaction. Pure.
 */
import { nftCheck } from '../checks.js';
import type { Network, Site } from '../../site/model.js';
import { DROP_MARK_BASE, markText } from './marks.js';
import {
  COUNTER_TABLE,
  COUNTERS,
  type CountedSide,
  DROP_REASONS,
  dropChainName,
  type DropReason,
  networkCounters,
  trafficCounters,
} from './names.js';

/** The drops the forward and input chains make, each by its reason and the side that names the network. */
export const DROPS: readonly (readonly [DropReason, CountedSide])[] = [
  ['input', 'from'],
  ['unowned_flow', 'from'],
  ['cross', 'from'],
  ['dns', 'from'],
  ['egress', 'from'],
  ['cross', 'to'],
  ['inbound', 'to'],
  ['unowned_flow', 'to'],
  ['ssh_source', 'to'],
];

/** The source chains' drops (prerouting): outside the subnet, not registered (or revoked), a VM subnet elsewhere. */
export const SOURCE_DROPS = ['spoofed', 'unregistered', 'spoofed_other'] as const;

/** A drop of a source chain. */
export type SourceDrop = (typeof SOURCE_DROPS)[number];

/**
 * The `meta mark` a dropped packet carries to its counting and its drop:
 * `DROP_MARK_BASE + 1 +` its place in {@link DROPS}, then {@link SOURCE_DROPS}.
 *
 * @example markText(dropMark(['egress', 'from'])) // '0x00ffff05'
 */
export function dropMark(drop: readonly [DropReason, CountedSide] | SourceDrop): number {
  const index =
    typeof drop === 'string'
      ? DROPS.length + SOURCE_DROPS.indexOf(drop)
      : DROPS.findIndex(([reason, side]) => reason === drop[0] && side === drop[1]);
  if (index < 0 || (typeof drop === 'string' && !SOURCE_DROPS.includes(drop))) {
    throw new RangeError(`no drop mark for ${String(drop)}`);
  }
  return DROP_MARK_BASE + 1 + index;
}

/** `{ 0x00ffff01, ... }`: every drop mark, for the main table's `drop_marked_*` chains. */
export function dropMarkSet(): string {
  return `{ ${[...DROPS, ...SOURCE_DROPS].map((d) => markText(dropMark(d))).join(', ')} }`;
}

/** The chains of the counters table: the three base chains, then one per drop. */
const CHAINS = { source: 'count_source', forward: 'count_forward', input: 'count_input' } as const;

/** The counting chain of a source drop: `count_spoofed`, ... */
function sourceCountChain(drop: SourceDrop): string {
  return `count_${drop}`;
}

/** The counting chain of a forward or input drop: `count_drop_egress_from`, ... */
function dropCountChain(reason: DropReason, side: CountedSide): string {
  return `count_${dropChainName(reason, side)}`;
}

/** Every named counter of the counters table: the site-wide ones, then each network's. */
export function counterNames(site: Site): string[] {
  return [
    ...Object.values(COUNTERS),
    ...site.networks.flatMap((n) => {
      const own = networkCounters(n.name);
      return n.egress === 'allow-list' ? [own.spoofed, own.unregistered] : [own.spoofed];
    }),
    ...site.networks.flatMap((n) => {
      const { dropped, ...accepted } = trafficCounters(n.name);
      return [...Object.values(accepted), ...Object.values(dropped)];
    }),
  ];
}

/** Every chain of the counters table, by name. */
export function counterChainNames(): string[] {
  return [
    ...Object.values(CHAINS),
    ...SOURCE_DROPS.map(sourceCountChain),
    ...DROPS.map(([reason, side]) => dropCountChain(reason, side)),
  ];
}

/** `counter name iifname map { "gw" : "counter.net", ... }`: a packet's network's counter, by its interface. */
function counterMap(networks: readonly Network[], side: CountedSide, counter: (network: Network) => string): string {
  const key = side === 'from' ? 'iifname' : 'oifname';
  const entries = networks.map(
    (n) => `"${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}" : "${counter(n)}"`,
  );
  return `counter name ${key} map { ${entries.join(', ')} }`;
}

/** `meta mark vmap { 0x00ffff05 : goto count_drop_egress_from, ... }`: a marked packet to its counting chain. */
function markDispatch(drops: readonly (readonly [DropReason, CountedSide] | SourceDrop)[]): string {
  const entries = drops.map((d) => {
    const target = typeof d === 'string' ? sourceCountChain(d) : dropCountChain(d[0], d[1]);
    return `${markText(dropMark(d))} : goto ${target}`;
  });
  return `meta mark vmap { ${entries.join(', ')} }`;
}

function chain(name: string, rules: readonly string[]): string {
  return [`  chain ${name} {`, ...rules.map((rule) => `    ${rule}`), '  }'].join('\n');
}

/**
 * The counters table, as the part of an `nft -f` script that replaces it
 * (`table … {}`, `delete table …`, the table). A packet whose interface names
 * no network only skips its network's count; a drop is still counted
 * site-wide. The counting chains decide nothing.
 */
export function renderCounterTable(site: Site): string {
  const networks = site.networks;
  const allowList = networks.filter((n) => n.egress === 'allow-list');
  const traffic = (n: Network) => trafficCounters(n.name);
  const body = [
    ...counterNames(site).map((name) => `  counter ${name} {\n  }`),
    chain(CHAINS.source, [
      'type filter hook prerouting priority mangle + 10; policy accept;',
      markDispatch(SOURCE_DROPS),
    ]),
    chain(CHAINS.forward, [
      'type filter hook forward priority filter + 10; policy accept;',
      markDispatch(DROPS),
      counterMap(networks, 'from', (n) => traffic(n).acceptedFrom),
      counterMap(networks, 'to', (n) => traffic(n).acceptedTo),
      `ct state new ${counterMap(networks, 'from', (n) => traffic(n).flowsFrom)}`,
      `ct state new ${counterMap(networks, 'to', (n) => traffic(n).flowsTo)}`,
    ]),
    chain(CHAINS.input, [
      'type filter hook input priority filter + 10; policy accept;',
      markDispatch(DROPS),
      counterMap(networks, 'from', (n) => traffic(n).acceptedLocal),
    ]),
    chain(sourceCountChain('spoofed'), [counterMap(networks, 'from', (n) => networkCounters(n.name).spoofed)]),
    chain(
      sourceCountChain('unregistered'),
      allowList.length > 0 ? [counterMap(allowList, 'from', (n) => networkCounters(n.name).unregistered)] : [],
    ),
    chain(sourceCountChain('spoofed_other'), [`counter name ${COUNTERS.spoofedElsewhere}`]),
    ...DROPS.map(([reason, side]) =>
      chain(dropCountChain(reason, side), [
        counterMap(networks, side, (n) => traffic(n).dropped[reason]),
        `counter name ${DROP_REASONS[reason]}`,
      ]),
    ),
  ];
  return [
    `table ${COUNTER_TABLE} {}`,
    `delete table ${COUNTER_TABLE}`,
    `table ${COUNTER_TABLE} {`,
    body.join('\n'),
    '}',
    '',
  ].join('\n');
}
