/**
 * The data-path benchmarks' namespaces (bench/proxy.ts, bench/datapath.ts):
 * throwaway network namespaces joined by veth pairs, the real programs run in
 * them (iperf3, socat, nft, node), and the load generator (bench/tcp-load.ts)
 * run as a separate process in the client's namespace. Everything a run
 * creates is named with its prefix and removed by {@link NetLab.remove}.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

const LOAD = resolve(import.meta.dirname, 'tcp-load.ts');

function background(ns: string, program: string, args: readonly string[]) {
  return execa('ip', ['netns', 'exec', ns, program, ...args], {
    reject: false,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  });
}

/** A program running in the background in a namespace (wrapped: awaiting the process itself waits for its exit). */
export interface Background {
  readonly child: ReturnType<typeof background>;
}

/** What the load generator measured (see bench/tcp-load.ts). */
export interface LoadResult {
  readonly connectionsPerSecond?: number;
  readonly rttMedianUs?: number;
  readonly rttP99Us?: number;
}

/** Namespaces, links and background programs of one benchmark run. */
export class NetLab {
  readonly prefix = `b${randomBytes(2).toString('hex')}`;
  private readonly namespaces: string[] = [];
  private readonly children: Background['child'][] = [];

  /** The namespace `<prefix>-<name>`, created with its loopback up. */
  async netns(name: string): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    await execa('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.run(ns, 'ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Run a program in `ns` (rejects on a non-zero exit). */
  run(ns: string, program: string, args: readonly string[], input?: string) {
    return execa('ip', ['netns', 'exec', ns, program, ...args], {
      timeout: 600_000,
      ...(input === undefined ? {} : { input }),
    });
  }

  /** A veth pair between two namespaces, each end with its name, addresses and MAC, up. */
  async link(
    a: { ns: string; name: string; addresses?: readonly string[]; mac?: string },
    b: { ns: string; name: string; addresses?: readonly string[]; mac?: string },
  ): Promise<void> {
    const tmp = `${this.prefix}${randomBytes(2).toString('hex')}`;
    await execa('ip', ['link', 'add', `${tmp}a`, 'type', 'veth', 'peer', 'name', `${tmp}b`]);
    for (const [end, side] of [
      [a, `${tmp}a`],
      [b, `${tmp}b`],
    ] as const) {
      await execa('ip', ['link', 'set', side, 'netns', end.ns]);
      await this.run(end.ns, 'ip', ['link', 'set', 'dev', side, 'name', end.name]);
      if (end.mac !== undefined) await this.run(end.ns, 'ip', ['link', 'set', 'dev', end.name, 'address', end.mac]);
      for (const address of end.addresses ?? [])
        await this.run(end.ns, 'ip', ['addr', 'add', address, 'dev', end.name]);
      await this.run(end.ns, 'ip', ['link', 'set', 'dev', end.name, 'up']);
    }
  }

  /** Start a program in `ns` in the background (ended by {@link stop} or {@link remove}); waits `settleMs`. */
  async spawn(ns: string, program: string, args: readonly string[], settleMs = 300): Promise<Background> {
    const child = background(ns, program, args);
    this.children.push(child);
    await sleep(settleMs);
    if (child.exitCode !== null) throw new Error(`${program} ${args.join(' ')} exited: ${String(child.stderr)}`);
    return { child };
  }

  /** End a background program by its pid (`ip netns exec` execs it in place). */
  async stop({ child }: Background): Promise<void> {
    child.kill('SIGTERM');
    await child;
  }

  /** iperf3 from `ns` to `host:port` for `seconds` (the first one omitted); received bits/s or packets/s. */
  async iperf(
    ns: string,
    host: string,
    port: number,
    seconds: number,
    udp?: { length: number },
  ): Promise<{ bitsPerSecond: number; packetsPerSecond: number }> {
    const args = ['-c', host, '-p', String(port), '-t', String(seconds), '-O', '1', '-J'];
    if (udp !== undefined) args.push('-u', '-b', '0', '-l', String(udp.length));
    const { stdout } = await this.run(ns, 'iperf3', args);
    const end = (JSON.parse(stdout) as { end: Record<string, Record<string, number>> }).end;
    if (udp === undefined) {
      const received = end.sum_received!;
      return { bitsPerSecond: received.bits_per_second!, packetsPerSecond: Number.NaN };
    }
    const sum = end.sum!;
    const delivered = sum.packets! - sum.lost_packets!;
    return { bitsPerSecond: (delivered * udp.length * 8) / sum.seconds!, packetsPerSecond: delivered / sum.seconds! };
  }

  /** The load generator in `ns` against `host:port` (an echo server): `connect` (conns/s) or `rtt` (ping-pong). */
  async load(ns: string, mode: 'connect' | 'rtt', host: string, port: number, seconds: number): Promise<LoadResult> {
    const { stdout } = await this.run(ns, process.execPath, [
      '--import',
      'tsx',
      LOAD,
      mode,
      host,
      String(port),
      String(seconds),
    ]);
    return JSON.parse(stdout) as LoadResult;
  }

  /** The echo server (bench/tcp-load.ts `serve`) in `ns` on `port`. */
  echoServer(ns: string, port: number): Promise<Background> {
    return this.spawn(ns, process.execPath, ['--import', 'tsx', LOAD, 'serve', '0.0.0.0', String(port)], 1500);
  }

  /** Stop every background program and delete the namespaces (with their links). */
  async remove(): Promise<void> {
    for (const child of this.children) {
      child.kill('SIGKILL');
      await child;
    }
    for (const ns of this.namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
  }
}

/** The median of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
