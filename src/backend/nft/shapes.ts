/**
 * Key shapes: how an allow entry becomes exact-match hash-set elements.
 *
 * A CIDR or a port range cannot be an element of a hash set, and interval
 * sets are O(n) to update (see DESIGN-NOTES.md). So every destination is
 * written as aligned blocks, and each block size has its own hash set, looked
 * up with the packet's fields masked to that size:
 * `ct mark . ip daddr & 255.255.240.0 . meta l4proto . th dport & 0xfff0 @allow_20_p12`,
 * where `ct mark` holds the sending NIC's id.
 * Address blocks come in prefix lengths that are multiples of 4 (a /17 is
 * eight /20s), port blocks in 16^k (1, 16, 256, 4096 ports, or all ports).
 */

/** Address prefix lengths that have a set: 32, 28, ..., 4, 0. */
export const IP_LEVELS = [32, 28, 24, 20, 16, 12, 8, 4, 0] as const;

/**
 * What a key holds after the destination address:
 * `any` nothing (every protocol), `proto` the protocol (every port),
 * `p16`/`p12`/`p8`/`p4` protocol and port masked to that many prefix bits.
 */
export const PORT_SHAPES = ['any', 'proto', 'p16', 'p12', 'p8', 'p4'] as const;

/** One of {@link PORT_SHAPES}. */
export type PortShape = (typeof PORT_SHAPES)[number];

/** A key shape: how many address bits and which port shape. `ipBits` 0 means no address in the key. */
export interface Shape {
  readonly ipBits: number;
  readonly port: PortShape;
}

/** Prefix bits of a port shape that carries a port. */
export function portBits(shape: PortShape): number | undefined {
  return shape.startsWith('p') && shape !== 'proto' ? Number(shape.slice(1)) : undefined;
}

/** The port shape for a port block of `bits` prefix bits (0 means every port: `proto`). */
export function portShapeOf(bits: number): PortShape {
  return bits === 0 ? 'proto' : (`p${bits}` as PortShape);
}

/** The name of the allow set of a shape, e.g. `allow_24_p16`. */
export function allowSetName(shape: Shape): string {
  return `allow_${shape.ipBits}_${shape.port}`;
}

/**
 * The name of the set of DNS-opened destinations of a port shape, e.g.
 * `dns_p16`: keys are always a whole address (`ipBits` 32), elements carry a
 * timeout (see `dnsOpenElements`).
 */
export function dnsSetName(port: PortShape): string {
  return `dns_${port}`;
}

/** The key shapes of the DNS-opened sets: a whole address, every port shape. */
export function dnsShapes(): Shape[] {
  return PORT_SHAPES.map((port) => ({ ipBits: 32, port }));
}

/** Every address allow shape, in rule order (most specific first). */
export function allowShapes(): Shape[] {
  return IP_LEVELS.flatMap((ipBits) => PORT_SHAPES.map((port) => ({ ipBits, port })));
}

/** The nft type of a key of this shape, e.g. `mark . ipv4_addr . inet_proto . inet_service` (the NIC id first). */
export function keyType(shape: Shape): string {
  const parts = ['mark'];
  if (shape.ipBits > 0) parts.push('ipv4_addr');
  if (shape.port !== 'any') parts.push('inet_proto');
  if (portBits(shape.port) !== undefined) parts.push('inet_service');
  return parts.join(' . ');
}

/**
 * The packet expression a key of this shape is looked up with: the flow's
 * `ct mark` (set to the sending NIC's id just before the lookups) first.
 */
export function keyExpression(shape: Shape): string {
  const parts = ['ct mark'];
  if (shape.ipBits === 32) parts.push('ip daddr');
  else if (shape.ipBits > 0) parts.push(`ip daddr & ${ipMask(shape.ipBits)}`);
  if (shape.port !== 'any') parts.push('meta l4proto');
  const bits = portBits(shape.port);
  if (bits === 16) parts.push('th dport');
  else if (bits !== undefined) parts.push(`th dport & 0x${portMask(bits).toString(16)}`);
  return parts.join(' . ');
}

/** Dotted netmask of a prefix length, 1-31. */
export function ipMask(bits: number): string {
  const value = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** The 16-bit mask of a port prefix length. */
export function portMask(bits: number): number {
  return (0xffff << (16 - bits)) & 0xffff;
}
