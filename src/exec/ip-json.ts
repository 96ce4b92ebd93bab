/**
 * Reading what `ip -j [-d] addr show` prints: each link's name, state,
 * global addresses, MTU and (with `-d`) its kind, VLAN id and parent. Pure.
 *
 * For: the host's and the backend's observers. May not: run `ip` (they do).
 */
import { ProgramOutputError } from '../errors/program-output-error.js';

/** A kernel network interface, as `ip -j addr` shows it. */
export interface IpLink {
  readonly name: string;
  /** Administratively up (`UP` flag). */
  readonly up: boolean;
  /** Global-scope IPv4/IPv6 addresses (`a.b.c.d/len`). */
  readonly addresses: readonly string[];
  /** The link's MTU (absent when `ip` did not say). */
  readonly mtu?: number;
  /** With `-d`: the link kind (`vlan`, `veth`, `bond`, ...; absent for a plain NIC). */
  readonly kind?: string;
  /** With `-d`, a VLAN link: its VLAN id. */
  readonly vlanId?: number;
  /** With `-d`, a VLAN link: its parent interface. */
  readonly parent?: string;
}

/**
 * Links from `ip -j addr show` (or `ip -d -j addr show`, which adds kind, VLAN id and parent).
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when the text is not that JSON list.
 */
export function parseIpAddr(text: string): IpLink[] {
  type Entry = {
    ifname?: string;
    mtu?: number;
    flags?: string[];
    link?: string;
    linkinfo?: { info_kind?: string; info_data?: { id?: number } };
    addr_info?: { local?: string; prefixlen?: number; scope?: string }[];
  };
  let list: Entry[];
  try {
    list = JSON.parse(text || '[]') as Entry[];
  } catch (error) {
    throw new ProgramOutputError('ip', 'the JSON list of `ip -j addr show`', text, { cause: error });
  }
  if (!Array.isArray(list)) throw new ProgramOutputError('ip', 'the JSON list of `ip -j addr show`', text);
  return list
    .filter((entry) => typeof entry.ifname === 'string')
    .map((entry) => {
      const kind = entry.linkinfo?.info_kind;
      const vlanId = kind === 'vlan' ? entry.linkinfo?.info_data?.id : undefined;
      return {
        name: entry.ifname as string,
        up: (entry.flags ?? []).includes('UP'),
        addresses: (entry.addr_info ?? [])
          .filter((a) => a.scope === 'global' && a.local !== undefined)
          .map((a) => `${a.local}/${a.prefixlen ?? ''}`),
        ...(typeof entry.mtu === 'number' ? { mtu: entry.mtu } : {}),
        ...(typeof kind === 'string' ? { kind } : {}),
        ...(typeof vlanId === 'number' ? { vlanId } : {}),
        ...(kind === 'vlan' && typeof entry.link === 'string' ? { parent: entry.link } : {}),
      };
    });
}
