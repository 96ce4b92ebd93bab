/**
 * Where ticrypt-net's OpenFlow flows live: the cookie layout that makes
 * removal exact, and the table numbers of the port-security pipeline. Plain
 * constants and arithmetic. May not: do I/O.
 *
 * Cookie: bits 63-48 `0x7c4e` (ticrypt-net's), 47-44 the program's kind
 * (1 bridge, 2 port, 3 group), 43-0 its ident (the port's ofport, the group's
 * id, 0 for the bridge). A program is removed with an exact cookie match
 * (`cookie=C/-1`), which OVS answers from its cookie index whatever the number
 * of flows; a partial mask would walk every flow (measured: research note 11).
 */

/** ticrypt-net's 16-bit cookie prefix. */
const PREFIX = 0x7c4en << 48n;
const KIND_SHIFT = 44n;

/** What a flow program is for. */
export type ProgramKind = 'bridge' | 'port' | 'group';

const KIND_CODE: Readonly<Record<ProgramKind, bigint>> = { bridge: 1n, port: 2n, group: 3n };

/** Every flow of ticrypt-net's, as a cookie match (prefix only): for dumps, never for deletes. */
export const ALL_OURS = '0x7c4e000000000000/0xffff000000000000';

/** The pipeline's tables. */
export const TABLE = {
  /** Dispatch by in_port: a VM port to anti-spoofing, the uplink to its source check, other ports to NORMAL. */
  dispatch: 0,
  /** Anti-spoofing, per VM port. */
  spoof: 10,
  /** The peers policy, per VM port (egress). */
  peers: 20,
  /** Source check of frames from the uplink (the gateway, remote group members). */
  uplink: 30,
  /** Delivery from the uplink to a VM port by destination MAC. */
  deliver: 31,
  /** Never reached by a packet: the canary and each program's stamp (its digest in `metadata`). */
  stamps: 99,
} as const;

/** Stamp priorities in {@link TABLE.stamps}: the canary, then one stamp per program kind. */
export const STAMP_PRIORITY: Readonly<Record<'canary' | ProgramKind, number>> = {
  canary: 0,
  bridge: 1,
  port: 2,
  group: 3,
};

/** The largest ident of each kind: an OpenFlow port number below OFPP_MAX, a 32-bit group id. */
export const MAX_IDENT: Readonly<Record<ProgramKind, number>> = { bridge: 0, port: 0xfeff, group: 0xffffffff };

/**
 * The cookie of a program.
 *
 * @example cookieOf('port', 7) === 0x7c4e200000000007n
 */
export function cookieOf(kind: ProgramKind, ident: number): bigint {
  return PREFIX | (KIND_CODE[kind] << KIND_SHIFT) | BigInt(ident);
}

/** A cookie as ovs-ofctl writes it: `0x` and 16 hex digits. */
export function cookieText(cookie: bigint): string {
  return `0x${cookie.toString(16).padStart(16, '0')}`;
}

/** The exact match of one program's flows: `cookie=0x7c4e200000000007/-1`. */
export function exactCookie(kind: ProgramKind, ident: number): string {
  return `${cookieText(cookieOf(kind, ident))}/-1`;
}

/** The kind and ident of one of our cookies; `undefined` for any other cookie. */
export function parseCookie(cookie: bigint): { kind: ProgramKind; ident: number } | undefined {
  if (cookie >> 48n !== 0x7c4en) return undefined;
  const code = (cookie >> KIND_SHIFT) & 0xfn;
  const kind = (Object.keys(KIND_CODE) as ProgramKind[]).find((k) => KIND_CODE[k] === code);
  if (kind === undefined) return undefined;
  const ident = Number(cookie & ((1n << KIND_SHIFT) - 1n));
  return ident <= MAX_IDENT[kind] ? { kind, ident } : undefined;
}
