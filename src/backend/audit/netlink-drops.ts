/**
 * The edge that reads how many messages the kernel dropped on a process's
 * netlink sockets: the Drops column of `/proc/net/netlink` (of the reader's
 * network namespace) for the socket inodes `/proc/<pid>/fd` holds. LAB.md:
 * the only place conntrack event losses show.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Drops per socket inode of `pid`'s netlink sockets (empty when the process is gone). */
export async function netlinkDrops(pid: number): Promise<Map<number, number>> {
  const inodes = new Set<number>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1] !== undefined) inodes.add(Number(match[1]));
  }
  const drops = new Map<number, number>();
  const table = await readFile('/proc/net/netlink', 'utf8').catch(() => '');
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const inode = Number(fields[9]);
    if (inodes.has(inode)) drops.set(inode, Number(fields[8]));
  }
  return drops;
}

/** Turns per-socket totals into increments, across logger restarts (new sockets start at 0). */
export class DropTracker {
  private last = new Map<number, number>();

  /** The drops since the last call. */
  delta(now: Map<number, number>): number {
    let sum = 0;
    for (const [inode, value] of now) sum += Math.max(0, value - (this.last.get(inode) ?? 0));
    this.last = now;
    return sum;
  }
}
