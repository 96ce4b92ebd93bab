/**
 * Boundary checks: the last check every value passes before it is written
 * into text another program reads (an nft script, a dnsmasq config line or
 * host entry file), whatever validated it before. One set for both programs,
 * every check `(field, value)`, each returning the value in the one form the
 * renderers write, or throwing that program's input error in the one shape
 * `<program> input <field>: expected <what>, found <value>`
 * ({@link NftInputError} `E_NFT_INPUT`, {@link DnsmasqInputError} `E_DNSMASQ_INPUT`).
 *
 * nft and dnsmasq give meaning to quotes, `,` `/` `#` `:` `;` whitespace and
 * newlines; no check admits one where it could change a line's meaning.
 *
 * For: the renderers under `nft/` (the DNS front's opens and closes too) and
 * `dnsmasq/`, the `nft -i` session and the dnsmasq process edge. May not:
 * fix a value up (a MAC in upper case is refused, not lowered: the store
 * keeps one form), or do I/O.
 */
import type { Boundary, BoundaryInputError } from '../errors/boundary-input-error.js';
import { DnsmasqInputError } from '../errors/dnsmasq-error.js';
import { NftInputError } from '../errors/nft-input-error.js';
import { isIpv4, isNetworkCidr, parseIpv4Cidr, type Ipv4Subnet } from '../site/address.js';
import { isUnicastMac } from '../site/mac.js';
import { isInterfaceName, isLeaseTime, LEASE_TIME_EXPECTED, NAME_PATTERN } from '../site/primitives.js';

/** The checks of one boundary: each takes `(field, value)` and returns the value or throws that boundary's error. */
export interface BoundaryChecks {
  /** The boundary's input error for `field` (for checks a caller makes itself). */
  refuse(field: string, expected: string, found: unknown): BoundaryInputError;
  /** A unicast MAC in lower-case colon form (the one form the store keeps). */
  mac(field: string, value: unknown): string;
  /** A dotted-quad IPv4 address. */
  ipv4(field: string, value: unknown): string;
  /** An IPv4 address or CIDR; a bare address is a /32; host bits are masked off. */
  destination(field: string, value: unknown): Ipv4Subnet;
  /** An IPv4 network address in CIDR form, prefix /30 or shorter; returns the prefix length. */
  subnet(field: string, value: unknown): number;
  /** A TCP/UDP port, 1-65535. */
  port(field: string, value: unknown): number;
  /** An integer in `[min, max]`. */
  integer(field: string, value: unknown, min: number, max: number): number;
  /** A Linux interface name (also safe inside double quotes in nft text). */
  interfaceName(field: string, value: unknown): string;
  /** A site name (network, reservation): lower-case letter first, then letters, digits, `-`, `_`. */
  name(field: string, value: unknown): string;
  /** An absolute path of letters, digits, `.`, `_`, `-` and `/`, no `..` component. */
  path(field: string, value: unknown): string;
  /** An nftables set name: a letter or `_` first, then letters, digits or `_`, at most 63 characters. */
  setName(field: string, value: unknown): string;
  /** A rate for nft log rules: `N/second|minute` with N 1-10000. */
  rate(field: string, value: unknown): string;
  /** A dnsmasq lease time: `infinite`, or a number with an optional s/m/h/d/w suffix, at least 2 minutes. */
  leaseTime(field: string, value: unknown): string;
}

/** A string check: the value when `valid`, else the boundary's error saying `expected`. */
type Text = (field: string, value: unknown) => string;

/**
 * The checks of `boundary`'s input.
 *
 * @example
 * boundaryChecks('nft').mac('registration.mac', registration.mac); // '52:54:00:12:34:56', or throws E_NFT_INPUT
 */
export function boundaryChecks(boundary: Boundary): BoundaryChecks {
  const refuse = (field: string, expected: string, found: unknown): BoundaryInputError =>
    boundary === 'nft' ? new NftInputError(field, expected, found) : new DnsmasqInputError(field, expected, found);
  const text =
    (expected: string, valid: (value: string) => boolean): Text =>
    (field, value) => {
      if (typeof value !== 'string' || !valid(value)) throw refuse(field, expected, value);
      return value;
    };
  const integer = (field: string, value: unknown, min: number, max: number, expected = `an integer ${min}-${max}`) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw refuse(field, expected, value);
    }
    return value;
  };
  return {
    refuse,
    mac: text(
      'a lower-case unicast MAC address like 52:54:00:12:34:56',
      (v) => isUnicastMac(v) && v === v.toLowerCase(),
    ),
    ipv4: text('an IPv4 address like 192.168.128.1', isIpv4),
    destination(field, value) {
      if (typeof value === 'string' && isIpv4(value)) return parseIpv4Cidr(`${value}/32`) as Ipv4Subnet;
      const subnet = typeof value === 'string' ? parseIpv4Cidr(value) : undefined;
      if (subnet === undefined) throw refuse(field, 'an IPv4 address or CIDR like 203.0.113.0/24', value);
      return subnet;
    },
    subnet(field, value) {
      const subnet = typeof value === 'string' ? parseIpv4Cidr(value) : undefined;
      if (typeof value !== 'string' || subnet === undefined || !isNetworkCidr(value) || subnet.prefix > 30) {
        throw refuse(field, 'an IPv4 network like 192.168.128.0/17 (prefix /30 or shorter)', value);
      }
      return subnet.prefix;
    },
    port: (field, value) => integer(field, value, 1, 65535, 'an integer port 1-65535'),
    integer: (field, value, min, max) => integer(field, value, min, max),
    interfaceName: text("an interface name of 1-15 letters, digits, '_', '.' or '-'", isInterfaceName),
    name: text("a name of 1-32 lower-case letters, digits, '-' or '_', starting with a letter", (v) =>
      NAME_PATTERN.test(v),
    ),
    path: text(
      "an absolute path of letters, digits, '.', '_', '-' and '/'",
      (v) => /^\/[A-Za-z0-9._/-]{0,4095}$/.test(v) && !v.split('/').includes('..'),
    ),
    setName: text("an nft set name of letters, digits and '_' (at most 63)", (v) =>
      /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(v),
    ),
    rate: text("a rate like '10/second' or '60/minute'", (v) => {
      const match = /^([1-9][0-9]{0,4})\/(second|minute)$/.exec(v);
      return match !== null && Number(match[1]) <= 10000;
    }),
    leaseTime: text(LEASE_TIME_EXPECTED, isLeaseTime),
  };
}

/** The checks of what is written into nft scripts (`E_NFT_INPUT`). */
export const nftCheck: BoundaryChecks = boundaryChecks('nft');

/** The checks of what is written into dnsmasq's config and host entry files (`E_DNSMASQ_INPUT`). */
export const dnsmasqCheck: BoundaryChecks = boundaryChecks('dnsmasq');
