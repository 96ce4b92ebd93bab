/** An IPv4 subnet with its bounds as 32-bit integers. */
export interface Ipv4Subnet {
  /** The CIDR as written, e.g. `192.168.128.0/17`. */
  readonly cidr: string;
  /** Prefix length, 0-32. */
  readonly prefix: number;
  /** The network address as an integer. */
  readonly first: number;
  /** The broadcast address as an integer. */
  readonly last: number;
}

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const DOTTED_QUAD = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

/** Whether `text` is a plain dotted-quad IPv4 address (no shorthand, no octal, no leading zeros). */
export function isIpv4(text: string): boolean {
  // A plain expression, not ipaddr.js's parser: the full firewall render checks ~500,000 addresses at 10k VMs.
  return DOTTED_QUAD.test(text);
}

/** The integer value of a dotted-quad IPv4 address. Throws on an invalid address. */
export function ipv4ToInt(text: string): number {
  if (!isIpv4(text)) throw new Error(`not a dotted-quad IPv4 address: ${JSON.stringify(text)}`);
  const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
  return a * 2 ** 24 + (b << 16) + (c << 8) + d;
}

/** The dotted-quad form of a 32-bit integer. */
export function intToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * Parse an IPv4 CIDR. Returns `undefined` when `text` is not `a.b.c.d/len`.
 * Host bits may be set; {@link isNetworkCidr} tells whether they are.
 */
export function parseIpv4Cidr(text: string): Ipv4Subnet | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!isIpv4(address) || !/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const size = 2 ** (32 - prefix);
  const first = Math.floor(ipv4ToInt(address) / size) * size;
  return { cidr: text, prefix, first, last: first + size - 1 };
}

/** Whether the CIDR names its network address, i.e. has no host bits set. */
export function isNetworkCidr(text: string): boolean {
  const subnet = parseIpv4Cidr(text);
  return subnet !== undefined && intToIpv4(subnet.first) === text.slice(0, text.indexOf('/'));
}

/** Whether the address lies within the subnet (network and broadcast included). */
export function subnetContains(subnet: Ipv4Subnet, address: string): boolean {
  const value = ipv4ToInt(address);
  return value >= subnet.first && value <= subnet.last;
}

/** Whether two subnets share any address. */
export function subnetsOverlap(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  return a.first <= b.last && b.first <= a.last;
}

/** The number of addresses from `start` to `end`, both included (0 when `end` < `start`). */
export function rangeSize(start: string, end: string): number {
  return Math.max(0, ipv4ToInt(end) - ipv4ToInt(start) + 1);
}

/** The netmask of a prefix length, e.g. 17 → `255.255.128.0`. */
export function prefixToNetmask(prefix: number): string {
  return intToIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}
