import { z } from 'zod';
import { intToIpv4, isIpv4, isNetworkCidr, parseIpv4Cidr } from './address.js';
import { expectedFound } from './describe.js';
import { isUnicastMac, normalizeMac } from './mac.js';
import { isInterfaceName, NAME_PATTERN } from './predicates.js';

/** An error function for zod that says what was expected and what was found. */
export function expect(expected: string) {
  return { error: (issue: { input?: unknown }) => expectedFound(expected, issue.input) };
}

function text(expected: string, valid: (value: string) => boolean) {
  const error = expect(expected);
  return z.string(error).refine(valid, error);
}

function integer(min: number, max: number) {
  const error = expect(`an integer ${min}-${max}`);
  return z.number(error).int(error).min(min, error).max(max, error);
}

export { NAME_PATTERN, isInterfaceName };

/** A name: lower-case letter first, then letters, digits, `-` or `_`, at most 32 characters. */
export const Name = text("a name of 1-32 lower-case letters, digits, '-' or '_', starting with a letter", (v) =>
  NAME_PATTERN.test(v),
);

/** A host name (RFC 1123 label sequence), e.g. `kvm-07` or `kvm-07.cluster.example`. */
export const HostName = text('a host name such as kvm-07 (letters, digits, - and .)', (v) =>
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
    v,
  ),
);

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN_PATTERN = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

/**
 * Whether `text` is a domain name an allow entry may name (or a wildcard's
 * base, see {@link isDomainPattern}): RFC 1123 labels in
 * lower case, at least two of them (a bare top-level domain would allow a whole
 * TLD), no trailing dot, and a last label that is not all digits (that is an address).
 */
export function isAllowedDomain(text: string): boolean {
  if (!DOMAIN_PATTERN.test(text)) return false;
  const last = text.slice(text.lastIndexOf('.') + 1);
  return !/^[0-9]+$/.test(last);
}

/**
 * Whether `text` may be an allow entry's domain: a name (`pypi.org`) or a
 * wildcard (`*.example.org`) whose base is such a name, so `*.org` is refused.
 */
export function isDomainPattern(text: string): boolean {
  return isAllowedDomain(text.startsWith('*.') ? text.slice(2) : text);
}

/** Expected-text for an allow entry's domain, shared by messages and tests. */
export const DOMAIN_PATTERN_EXPECTED =
  'a lower-case domain name of at least two labels such as pypi.org, or a wildcard such as *.example.org';

/** A Linux interface name (bridges, uplinks): at most 15 characters (IFNAMSIZ - 1). */
export const InterfaceName = text("an interface name of 1-15 letters, digits, '_', '.' or '-'", isInterfaceName);

/** An 802.1Q VLAN id, 1-4094. */
export const VlanId = integer(1, 4094);

/** An MTU in bytes, 68-65535. */
export const Mtu = integer(68, 65535);

/** A TCP/UDP port, 1-65535. */
export const Port = integer(1, 65535);

/** What {@link PortRangeText} accepts, for messages. */
export const PORT_RANGE_EXPECTED = "a port 1-65535 or a range like '8000-8100'";

/**
 * A TCP/UDP port or an inclusive range of them, written `443`, `'443'` or
 * `'8000-8100'`, as `{ from, to }` (a single port has `from === to`).
 */
export const PortRangeText = z.union([z.number(), z.string()], expect(PORT_RANGE_EXPECTED)).transform((value, ctx) => {
  const match = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(String(value));
  const from = Number(match?.[1]);
  const to = match?.[2] === undefined ? from : Number(match[2]);
  if (!match || from < 1 || to > 65535 || from > to) {
    ctx.addIssue({ code: 'custom', message: expectedFound(PORT_RANGE_EXPECTED, value) });
    return z.NEVER;
  }
  return { from, to };
});

/** A dotted-quad IPv4 address. */
export const Ipv4 = text('an IPv4 address like 192.168.128.1', isIpv4);

/** An IPv4 network in CIDR form whose address is the network address. */
export const Ipv4Network = z
  .string(expect('an IPv4 network like 192.168.128.0/17'))
  .refine((v) => parseIpv4Cidr(v) !== undefined, expect('an IPv4 network like 192.168.128.0/17'))
  .refine(isNetworkCidr, {
    error: (issue) => {
      const subnet = parseIpv4Cidr(String(issue.input));
      const fixed = subnet === undefined ? 'its network address' : `${intToIpv4(subnet.first)}/${subnet.prefix}`;
      return expectedFound(`the network address (${fixed})`, issue.input);
    },
  });

/** A unicast MAC address, normalized to lower case. */
export const Mac = text('a unicast MAC address like 52:54:00:12:34:56', isUnicastMac).transform(normalizeMac);

/** Whether `value` is a dnsmasq lease time: `infinite`, or a number with an optional s/m/h/d/w suffix, at least 2 minutes. */
export function isLeaseTime(value: string): boolean {
  if (value === 'infinite') return true;
  const match = /^([1-9][0-9]{0,7})([smhdw]?)$/.exec(value);
  if (!match) return false;
  const seconds = Number(match[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2] ?? ''] ?? 1);
  return seconds >= 120;
}

/** What {@link isLeaseTime} accepts, for messages. */
export const LEASE_TIME_EXPECTED = "a lease time like '12h', '30m', '3600' or 'infinite' (at least 2m)";

/** A dnsmasq lease time (see {@link isLeaseTime}). */
export const LeaseTime = text(LEASE_TIME_EXPECTED, isLeaseTime);

/**
 * Whether `value` may be a PXE boot file (dnsmasq `dhcp-boot`): URL characters
 * only, at most 255, so no spaces, commas, quotes or newlines can split the line.
 */
export function isBootFile(value: string): boolean {
  return /^[A-Za-z0-9._~:/?#[\]@!$&()*+;=%-]{1,255}$/.test(value);
}

/** What a PXE client is told to boot (dnsmasq `dhcp-boot`): a file name or an http(s) URL. */
export const BootFile = text(
  'a boot file name or URL like http://198.51.100.10/boot.ipxe (no spaces, commas or quotes)',
  isBootFile,
);

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration like `30s`, `10m`, `12h` or `7d`; `undefined` when it is not one. */
export function durationMs(value: string): number | undefined {
  const match = /^([1-9][0-9]{0,5})([smhd])$/.exec(value);
  return match ? Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] ?? 0) : undefined;
}

/** A duration like `30s`, `10m`, `12h` or `7d`, as milliseconds. */
export const Duration = text(
  "a duration like '30s', '10m', '12h' or '7d'",
  (v) => durationMs(v) !== undefined,
).transform((v) => durationMs(v) ?? 0);

/** The packet mark bits ticrypt-net may use for the fail-closed bit: one of bits 24-31. */
export const FAIL_CLOSED_BITS = [24, 25, 26, 27, 28, 29, 30, 31] as const;

/** Whether `value` is a single bit among bits 24-31 (0x01000000-0x80000000). */
export function isFailClosedMark(value: number): boolean {
  return FAIL_CLOSED_BITS.some((bit) => value === 2 ** bit);
}

/** A packet mark with exactly one bit set among bits 24-31, as a number or a hex string like `'0x10000000'`. */
export const FailClosedMark = z
  .union([z.number(), z.string()], expect('a single mark bit among 0x01000000-0x80000000, like 0x10000000'))
  .transform((value, ctx) => {
    const number = typeof value === 'number' ? value : /^0x[0-9a-fA-F]{1,8}$/.test(value) ? Number(value) : NaN;
    if (!isFailClosedMark(number)) {
      ctx.addIssue({
        code: 'custom',
        message: expectedFound('a single mark bit among 0x01000000-0x80000000, like 0x10000000', value),
      });
      return z.NEVER;
    }
    return number;
  });

/** A count limit: an integer 1 or more (at most 1,000,000). */
export function Limit(max = 1_000_000) {
  return integer(1, max);
}
