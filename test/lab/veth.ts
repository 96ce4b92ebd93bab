import { execa } from 'execa';
import type { Netns } from './netns.js';

/** One end of a veth pair: an interface name, in a namespace or (no `netns`) the root namespace. */
export interface VethEnd {
  readonly name: string;
  readonly netns?: Netns;
}

function inNs(end: VethEnd, program: string, args: readonly string[]) {
  const command =
    end.netns === undefined ? [program, ...args] : ['ip', 'netns', 'exec', end.netns.name, program, ...args];
  const [head, ...rest] = command as [string, ...string[]];
  return execa(head, rest, { timeout: 10_000 });
}

/**
 * Create a veth pair between two namespaces (or one and the root namespace),
 * both ends up. With `txOff`, transmit checksum offload is turned off on both
 * ends: a veth whose packets cross the OVS userspace datapath otherwise sends
 * UDP with bad checksums, and DHCP clients ignore the offers (LAB.md).
 * Deleting either namespace deletes the pair.
 */
export async function vethPair(a: VethEnd, b: VethEnd, options: { txOff?: boolean; mac?: string } = {}): Promise<void> {
  const where = (end: VethEnd) => (end.netns === undefined ? [] : ['netns', end.netns.name]);
  await execa('ip', ['link', 'add', a.name, ...where(a), 'type', 'veth', 'peer', 'name', b.name, ...where(b)]);
  if (options.mac !== undefined) await inNs(b, 'ip', ['link', 'set', b.name, 'address', options.mac]);
  for (const end of [a, b]) {
    if (options.txOff === true) await inNs(end, 'ethtool', ['-K', end.name, 'tx', 'off']);
    await inNs(end, 'ip', ['link', 'set', end.name, 'up']);
  }
}
