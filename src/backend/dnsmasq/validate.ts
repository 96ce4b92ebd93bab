/**
 * The checks every value passes before it is written into a dnsmasq config
 * line or host entry file. Each returns the value (typed) or throws
 * {@link DnsmasqInputError} naming the field, what was expected and what was found.
 *
 * dnsmasq's config syntax gives meaning to `,` `/` `#` `:` whitespace and
 * newlines; every pattern here admits none of them where they could change a
 * line's meaning.
 */
import { DnsmasqInputError } from '../../errors/dnsmasq-error.js';
import { isIpv4, parseIpv4Cidr, isNetworkCidr } from '../../site/address.js';
import { isUnicastMac } from '../../site/mac.js';
import { DOMAIN_EXPECTED, isAllowedDomain, isInterfaceName, NAME_PATTERN } from '../../site/primitives.js';

/** A domain name for `server=`/`nftset=` lines. */
export function checkDomain(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isAllowedDomain(value)) throw new DnsmasqInputError(field, DOMAIN_EXPECTED, value);
  return value;
}

/** A dotted-quad IPv4 address. */
export function checkIpv4(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isIpv4(value)) {
    throw new DnsmasqInputError(field, 'an IPv4 address like 192.168.128.1', value);
  }
  return value;
}

/** An IPv4 network in CIDR form; returns its prefix length. */
export function checkSubnet(field: string, value: unknown): number {
  const subnet = typeof value === 'string' ? parseIpv4Cidr(value) : undefined;
  if (typeof value !== 'string' || subnet === undefined || !isNetworkCidr(value) || subnet.prefix > 30) {
    throw new DnsmasqInputError(field, 'an IPv4 network like 192.168.128.0/17 (prefix /30 or shorter)', value);
  }
  return subnet.prefix;
}

/** A unicast MAC in lower-case colon form (the one form the store keeps). */
export function checkMac(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isUnicastMac(value) || value !== value.toLowerCase()) {
    throw new DnsmasqInputError(field, 'a lower-case unicast MAC address like 52:54:00:12:34:56', value);
  }
  return value;
}

/** A Linux interface name. */
export function checkInterface(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isInterfaceName(value)) {
    throw new DnsmasqInputError(field, "an interface name of 1-15 letters, digits, '_', '.' or '-'", value);
  }
  return value;
}

/** A site name (network, reservation): lower-case letter first, then letters, digits, `-`, `_`. */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw new DnsmasqInputError(
      field,
      "a name of 1-32 lower-case letters, digits, '-' or '_', starting with a letter",
      value,
    );
  }
  return value;
}

/** A dnsmasq lease time: `infinite`, or a number with an optional s/m/h/d/w suffix, at least 2 minutes. */
export function checkLeaseTime(field: string, value: unknown): string {
  const expected = "a lease time like '12h', '30m', '3600' or 'infinite' (at least 2m)";
  if (typeof value !== 'string') throw new DnsmasqInputError(field, expected, value);
  if (value === 'infinite') return value;
  const match = /^([1-9][0-9]{0,7})([smhdw]?)$/.exec(value);
  const unit: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  if (!match || Number(match[1]) * (unit[match[2] ?? ''] ?? 1) < 120)
    throw new DnsmasqInputError(field, expected, value);
  return value;
}

/** An absolute path of safe characters only (letters, digits, `.`, `_`, `-`, `/`), no `..` component. */
export function checkPath(field: string, value: unknown): string {
  if (
    typeof value !== 'string' ||
    !/^\/[A-Za-z0-9._/-]{0,4095}$/.test(value) ||
    value.split('/').some((part) => part === '..')
  ) {
    throw new DnsmasqInputError(field, "an absolute path of letters, digits, '.', '_', '-' and '/'", value);
  }
  return value;
}

/** An nftables set name: a letter or `_` first, then letters, digits or `_`, at most 63 characters. */
export function checkSetName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value)) {
    throw new DnsmasqInputError(field, "an nft set name of letters, digits and '_' (at most 63)", value);
  }
  return value;
}

/** An integer in `[min, max]`. */
export function checkInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DnsmasqInputError(field, `an integer ${min}-${max}`, value);
  }
  return value;
}
