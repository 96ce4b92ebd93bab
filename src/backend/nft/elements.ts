/**
 * Element encodings: a registration and its allow entries as the exact set
 * elements they put in `table inet ticrypt`. Pure; every value re-checked.
 */
import { nftCheck } from '../checks.js';
import { intToIpv4, type Ipv4Subnet } from '../../site/address.js';
import type { Network, Site } from '../../site/model.js';
import type { AllowEntry, Registration } from '../../protocol/api.js';
import { markText, MAX_NIC_ID, NIC_FLOWS_SET, NIC_IDS_MAP } from './names.js';
import { allowSetName, dnsSetName, IP_LEVELS, portShapeOf, type PortShape, type Shape } from './shapes.js';

/** One element of one set or map, as nft text (`0x0000002a . 203.0.113.0 . tcp . 443`). */
export interface NftElement {
  readonly set: string;
  readonly key: string;
  /** A map element's value (`0x0000002a`); absent in a set. */
  readonly value?: string;
}

/** A port block: `base` and the number of fixed prefix bits (16: one port, 0: every port). */
interface PortBlock {
  readonly base: number;
  readonly bits: number;
}

const PORT_BITS = [0, 4, 8, 12, 16] as const;

/**
 * Aligned blocks covering `from`-`to` exactly, coarsest first (greedy).
 * Port 0 is never real traffic, so a range from 1 counts as from 0.
 */
export function portBlocks(from: number, to: number): PortBlock[] {
  const blocks: PortBlock[] = [];
  let position = from === 1 ? 0 : from;
  while (position <= to) {
    const bits = PORT_BITS.find((b) => position % 2 ** (16 - b) === 0 && position + 2 ** (16 - b) - 1 <= to) ?? 16;
    blocks.push({ base: position, bits });
    position += 2 ** (16 - bits);
  }
  return blocks;
}

/** The (port shape, key suffix) pairs of an entry's protocol and ports. */
function portParts(entry: AllowEntry): { shape: PortShape; suffix: string }[] {
  const { protocol, ports } = entry;
  if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'icmp' && protocol !== 'any') {
    throw nftCheck.refuse('protocol', "'tcp', 'udp', 'icmp' or 'any'", protocol);
  }
  if (ports !== undefined && protocol !== 'tcp' && protocol !== 'udp') {
    throw nftCheck.refuse('ports', `no ports with protocol ${protocol}`, ports);
  }
  if (protocol === 'any') return [{ shape: 'any', suffix: '' }];
  if (ports === undefined) return [{ shape: 'proto', suffix: ` . ${protocol}` }];
  const from = nftCheck.port('ports.from', ports.from);
  const to = nftCheck.port('ports.to', ports.to);
  if (from > to) throw nftCheck.refuse('ports', 'from <= to', ports);
  return portBlocks(from, to).map(({ base, bits }) => ({
    shape: portShapeOf(bits),
    suffix: bits === 0 ? ` . ${protocol}` : ` . ${protocol} . ${base}`,
  }));
}

/** A NIC id (1 to 0xfffffe) as nft writes a mark: `0x0000002a`. */
export function nicIdText(nicId: unknown): string {
  return markText(nftCheck.integer('nicId', nicId, 1, MAX_NIC_ID));
}

/**
 * The elements that open `destination` with an entry's protocol and ports to
 * the NIC with id `nicId`, in the sets `setOf` names per key shape. The one
 * place that writes the owner part of a key: allow-list and DNS-opened
 * elements are keyed alike, so a flow either accepts carries the NIC's id as
 * its `ct mark`.
 */
function destinationElements(
  nicId: number,
  destination: Ipv4Subnet,
  entry: AllowEntry,
  setOf: (shape: Shape) => string,
): NftElement[] {
  const owner = nicIdText(nicId);
  const ports = portParts(entry);
  const ipBits = IP_LEVELS.find((level) => level >= destination.prefix && level < destination.prefix + 4) ?? 32;
  const step = 2 ** (32 - ipBits);
  const elements: NftElement[] = [];
  for (let base = destination.first; base <= destination.last; base += step) {
    const address = ipBits === 0 ? '' : ` . ${intToIpv4(base)}`;
    for (const { shape, suffix } of ports) {
      elements.push({ set: setOf({ ipBits, port: shape }), key: `${owner}${address}${suffix}` });
    }
  }
  return elements;
}

/**
 * The elements one allow entry puts in the sets, for the NIC with id `nicId`.
 * A domain entry has none of its own: each answer of the DNS front opens the
 * addresses it names ({@link dnsOpenElements}).
 */
export function entryElements(nicId: number, entry: AllowEntry): NftElement[] {
  if (entry.type === 'domain') {
    nicIdText(nicId);
    portParts(entry);
    return [];
  }
  if (entry.type !== 'address')
    throw nftCheck.refuse('type', "'address' or 'domain'", (entry as { type: unknown }).type);
  return destinationElements(nicId, nftCheck.destination('address', entry.address), entry, allowSetName);
}

/**
 * The elements that open `address`, answered by the DNS front for a name of
 * the domain `entry`, to the NIC with id `nicId`: one per port block of the
 * entry, in the `dns_*` sets (`flags timeout`; the caller adds the timeout).
 *
 * @example
 * dnsOpenElements(42, '203.0.113.10', { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } });
 * // [{ set: 'dns_p16', key: '0x0000002a . 203.0.113.10 . tcp . 443' }]
 */
export function dnsOpenElements(nicId: number, address: string, entry: AllowEntry): NftElement[] {
  const destination = nftCheck.destination('address', nftCheck.ipv4('address', address));
  return destinationElements(nicId, destination, entry, (shape) => dnsSetName(shape.port));
}

/** Whether registrations on this network get firewall elements (allow-list egress). */
export function isAllowListNetwork(network: Network): boolean {
  return network.egress === 'allow-list';
}

/** The network a registration names. @throws {NftInputError} when the site has no such network. */
export function registrationNetwork(site: Site, registration: Registration): Network {
  const network = site.networks.find((n) => n.name === registration.network);
  if (network === undefined) throw nftCheck.refuse('network', 'a network of the site', registration.network);
  return network;
}

/**
 * The two elements that say who a NIC of an allow-list network is: its
 * `iifname . mac . ip` triple mapped to its id (`nic_ids`), and
 * `iifname . ip . id` (`nic_flows`), against which established flows' `ct mark` is checked.
 */
export function identityElements(site: Site, registration: Registration): NftElement[] {
  const network = registrationNetwork(site, registration);
  if (!isAllowListNetwork(network)) return [];
  const iface = nftCheck.interfaceName('gatewayInterface', network.gatewayInterface);
  const mac = nftCheck.mac('mac', registration.mac);
  const ip = nftCheck.ipv4('ip', registration.ip);
  const id = nicIdText(registration.nicId);
  return [
    { set: NIC_IDS_MAP, key: `"${iface}" . ${mac} . ${ip}`, value: id },
    { set: NIC_FLOWS_SET, key: `"${iface}" . ${ip} . ${id}` },
  ];
}

/**
 * Every element a registered NIC puts in the table: its identity
 * ({@link identityElements}) and one or more elements per allow entry, keyed
 * by its id, without duplicates. Empty on a network with open egress.
 */
export function nicElements(site: Site, registration: Registration, entries: readonly AllowEntry[]): NftElement[] {
  const identity = identityElements(site, registration);
  if (identity.length === 0) return [];
  return dedupe([...identity, ...entries.flatMap((e) => entryElements(registration.nicId, e))]);
}

/** The text nft takes for an element when adding it: `key` or `key : value`. */
export function elementText(element: NftElement): string {
  return element.value === undefined ? element.key : `${element.key} : ${element.value}`;
}

/** Elements with duplicates (same set, key and value) removed, first occurrence kept. */
export function dedupe(elements: readonly NftElement[]): NftElement[] {
  const seen = new Set<string>();
  return elements.filter((element) => {
    const id = elementId(element);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** What tells two elements apart: set, key and value. */
export function elementId(element: NftElement): string {
  return `${element.set}\u0000${element.key}\u0000${element.value ?? ''}`;
}

/**
 * Group elements by set, in first-seen set order: `set -> texts`, each text
 * `key : value` for adding (`withValues`, default) or the bare key for deleting.
 */
export function groupBySet(elements: readonly NftElement[], withValues = true): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const element of elements) {
    const text = withValues ? elementText(element) : element.key;
    const keys = groups.get(element.set);
    if (keys === undefined) groups.set(element.set, [text]);
    else keys.push(text);
  }
  return groups;
}
