/**
 * Which TCP ports have a listening socket in the backend's network namespace
 * (the one this process runs in), from the kernel's socket tables
 * (`/proc/net/tcp` and `tcp6`), with no program started.
 * For: SSH port allocation, which skips a port another program listens on (a
 * DNAT on it would take that program's clients). May not: judge what it finds.
 *
 * Reading the tables walks the kernel's whole established-socket hash (shared
 * by every namespace): 2-4 ms here whatever this namespace holds (an early
 * stop after the listening sockets, which come first, saved nothing, and
 * neither does forking `ss`). So {@link ListeningPorts} keeps what it read for
 * a second: a burst of registrations pays for one read.
 */
import { readFile } from 'node:fs/promises';

/** The socket state `/proc/net/tcp` writes for LISTEN. */
const LISTEN = '0A';

/** The local ports of the listening sockets in one `/proc/net/tcp`-style table. */
export function listeningPortsIn(table: string): number[] {
  const ports: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== LISTEN || local === undefined) continue;
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port)) ports.push(port);
  }
  return ports;
}

/**
 * The TCP ports with a listening socket in this network namespace (IPv4 and
 * IPv6, any local address).
 *
 * @example (await listeningTcpPorts()).has(22) // an sshd on the backend
 */
export async function listeningTcpPorts(procNet = '/proc/net'): Promise<Set<number>> {
  const tables = await Promise.all(
    ['tcp', 'tcp6'].map((name) => readFile(`${procNet}/${name}`, 'latin1').catch(() => '')),
  );
  return new Set(tables.flatMap(listeningPortsIn));
}

/** {@link listeningTcpPorts}, read at most once per `maxAgeMs` (default 1000). */
export class ListeningPorts {
  private last: { at: number; ports: Promise<Set<number>> } | undefined;

  constructor(
    private readonly maxAgeMs = 1000,
    private readonly read: () => Promise<Set<number>> = () => listeningTcpPorts(),
    private readonly now: () => number = Date.now,
  ) {}

  /** The listening ports, at most `maxAgeMs` old. */
  get(): Promise<ReadonlySet<number>> {
    const now = this.now();
    if (this.last === undefined || now - this.last.at > this.maxAgeMs) {
      this.last = { at: now, ports: this.read() };
    }
    return this.last.ports;
  }
}
