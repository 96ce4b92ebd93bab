/**
 * The edge that reads how many messages the kernel dropped on a process's
 * netlink sockets: the Drops column of `/proc/<pid>/net/netlink` (the
 * process's own network namespace, wherever the reader runs) for the socket inodes `/proc/<pid>/fd` holds. LAB.md:
 * the only place conntrack event losses show.
 *
 * The two kinds of socket count differently. The conntrack event socket
 * subscribes to multicast groups (its Groups column is not 0) and ulogd runs
 * it with `reliable=1`: the kernel keeps an end event it could not deliver
 * and sends it again, so its Drops are overruns, not losses (a 10 s burst of
 * 83,369 flows overran it 1,508 times and every flow was on record). The
 * NFLOG socket (Groups 0) is unicast: each of its Drops is a lost netlink
 * message, a batch of up to hundreds of refusals (a stalled logger with a
 * 4 KiB buffer: 15 Drops, 251 refusals missing from the NFLOG sequence).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Drops per socket inode of `pid`'s netlink sockets, split by kind (both empty when the process is gone). */
export interface NetlinkDrops {
  /** Sockets subscribed to multicast groups (conntrack events, redelivered in reliable mode): overruns. */
  readonly events: Map<number, number>;
  /** Unicast sockets (NFLOG): messages (batches of refusals) lost. */
  readonly log: Map<number, number>;
}

/** The Drops of `pid`'s netlink sockets, per socket inode, by kind. */
export async function netlinkDrops(pid: number): Promise<NetlinkDrops> {
  const inodes = new Set<number>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1] !== undefined) inodes.add(Number(match[1]));
  }
  const drops: NetlinkDrops = { events: new Map(), log: new Map() };
  // The process's own namespace's table (doctor may run outside it).
  const table = await readFile(`/proc/${pid}/net/netlink`, 'utf8').catch(() => '');
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const inode = Number(fields[9]);
    if (!inodes.has(inode)) continue;
    const subscribed = Number.parseInt(fields[3] ?? '0', 16) !== 0;
    (subscribed ? drops.events : drops.log).set(inode, Number(fields[8]));
  }
  return drops;
}

/** Turns per-socket totals into increments, across logger restarts (new sockets start at 0). */
export class DropTracker {
  /** @param last the totals already counted per socket inode (a restarted service's, from its loss ledger). */
  constructor(private last: ReadonlyMap<number, number> = new Map()) {}

  /** The totals counted so far per socket inode. */
  get seen(): ReadonlyMap<number, number> {
    return this.last;
  }

  /** The drops since the last call. */
  delta(now: Map<number, number>): number {
    let sum = 0;
    for (const [inode, value] of now) sum += Math.max(0, value - (this.last.get(inode) ?? 0));
    this.last = now;
    return sum;
  }
}
