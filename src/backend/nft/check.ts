/**
 * Boundary checks: every value is re-checked here before it is written into
 * nftables text, whatever validated it before. Each returns the value in the
 * one form the renderers write, or throws {@link NftInputError} (`E_NFT_INPUT`).
 */
import { NftInputError } from '../../errors/nft-input-error.js';
import { isIpv4, parseIpv4Cidr, type Ipv4Subnet } from '../../site/address.js';
import { isUnicastMac } from '../../site/mac.js';
import { isInterfaceName } from '../../site/primitives.js';

/** A lower-case unicast MAC. */
export function checkMac(value: unknown, field = 'mac'): string {
  if (typeof value !== 'string' || !isUnicastMac(value)) {
    throw new NftInputError(field, 'a unicast MAC address like 52:54:00:12:34:56', value);
  }
  return value.toLowerCase();
}

/** A dotted-quad IPv4 address. */
export function checkIpv4(value: unknown, field = 'ip'): string {
  if (typeof value !== 'string' || !isIpv4(value)) throw new NftInputError(field, 'an IPv4 address', value);
  return value;
}

/** An IPv4 address or CIDR; a bare address is a /32. Host bits are masked off. */
export function checkDestination(value: unknown, field = 'address'): Ipv4Subnet {
  if (typeof value === 'string' && isIpv4(value)) return parseIpv4Cidr(`${value}/32`) as Ipv4Subnet;
  const subnet = typeof value === 'string' ? parseIpv4Cidr(value) : undefined;
  if (subnet === undefined) throw new NftInputError(field, 'an IPv4 address or CIDR like 203.0.113.0/24', value);
  return subnet;
}

/** A TCP/UDP port, 1-65535. */
export function checkPort(value: unknown, field = 'port'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new NftInputError(field, 'an integer port 1-65535', value);
  }
  return value;
}

/** A Linux interface name, safe inside double quotes in nft text. */
export function checkInterface(value: unknown, field = 'interface'): string {
  if (typeof value !== 'string' || !isInterfaceName(value)) {
    throw new NftInputError(field, "an interface name of 1-15 letters, digits, '_', '.' or '-'", value);
  }
  return value;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A lower-case DNS name (no trailing dot, no wildcard), at most 253 characters. */
export function checkDomain(value: unknown, field = 'domain'): string {
  const valid =
    typeof value === 'string' &&
    value.length <= 253 &&
    value.includes('.') &&
    value.split('.').every((label) => LABEL.test(label));
  if (!valid) throw new NftInputError(field, 'a lower-case domain name like pypi.org', value);
  return value;
}

/** A rate for log rules: `N/second|minute` with N 1-10000. */
export function checkRate(value: unknown, field = 'log.rate'): string {
  const match = typeof value === 'string' ? /^([1-9][0-9]{0,4})\/(second|minute)$/.exec(value) : null;
  if (match === null || Number(match[1]) > 10000) {
    throw new NftInputError(field, "a rate like '10/second' or '60/minute'", value);
  }
  return value as string;
}

/** An nft timeout like `1d`, `12h` or `30m`. */
export function checkTimeout(value: unknown, field = 'domainTimeout'): string {
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,5}[smhd]$/.test(value)) {
    throw new NftInputError(field, "a timeout like '1d', '12h' or '30m'", value);
  }
  return value;
}
