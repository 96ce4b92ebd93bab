/**
 * The data-path benchmarks' namespaces (bench/proxy.ts, bench/datapath.ts):
 * throwaway network namespaces joined by veth pairs, the real programs run in
 * them (iperf3, socat, nft, node, nginx), and native load generators in the
 * client's namespace (iperf3 for throughput, wrk for new connections,
 * sockperf for round trips), so the load side is never what is measured.
 * Everything a run creates is named with its prefix and removed by
 * {@link NetLab.remove}.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

function background(ns: string, program: string, args: readonly string[]) {
  return execa('ip', ['netns', 'exec', ns, program, ...args], {
    reject: false,
    stdin: 'ignore',
    all: true,
    stdout: 'pipe',
    stderr: 'pipe',
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** A program running in the background in a namespace (wrapped: awaiting the process itself waits for its exit). */
export interface Background {
  readonly child: ReturnType<typeof background>;
}

/** Namespaces, links and background programs of one benchmark run. */
export class NetLab {
  readonly prefix = `b${randomBytes(2).toString('hex')}`;
  private readonly namespaces: string[] = [];
  private readonly children: Background['child'][] = [];
  private readonly dirs: string[] = [];

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
    if (child.exitCode !== null)
      throw new Error(`${program} ${args.join(' ')} exited: ${String((await child).all ?? '')}`);
    return { child };
  }

  /** End a background program by its pid (`ip netns exec` execs it in place). */
  async stop({ child }: Background): Promise<void> {
    child.kill('SIGTERM');
    await child;
  }

  /**
   * iperf3 from `ns` to `host:port` for `seconds` (the first one omitted), over `streams` parallel TCP
   * streams (`-P`) or UDP datagrams of `udp.length`; received bits/s or packets/s.
   */
  async iperf(
    ns: string,
    host: string,
    port: number,
    seconds: number,
    udp?: { length: number },
    streams = 1,
  ): Promise<{ bitsPerSecond: number; packetsPerSecond: number }> {
    const args = ['-c', host, '-p', String(port), '-t', String(seconds), '-O', '1', '-J'];
    if (streams > 1) args.push('-P', String(streams));
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

  /**
   * New connections per second from `ns` to `host:port` (an HTTP server closing each connection): wrk with
   * 2 threads and `connections` at a time, each request on a new connection (`Connection: close`).
   */
  async connectionRate(ns: string, host: string, port: number, seconds: number, connections = 32): Promise<number> {
    const { stdout } = await this.run(ns, 'wrk', [
      ...['-t', '2', '-c', String(connections), '-d', `${seconds}s`],
      ...['-H', 'Connection: close', `http://${host}:${port}/`],
    ]);
    const rate = /Requests\/sec:\s+([0-9.]+)/.exec(stdout);
    if (rate === null) throw new Error(`wrk printed no rate: ${stdout}`);
    if (process.env.BENCH_DEBUG) console.error(stdout);
    return Number(rate[1]);
  }

  /** `size`-byte TCP round trips from `ns` to `host:port` (a sockperf server) on one connection: median and p99 in µs. */
  async roundTrip(ns: string, host: string, port: number, seconds: number, size = 64) {
    const { stdout, stderr } = await this.run(ns, 'sockperf', [
      ...['ping-pong', '--tcp', '-i', host, '-p', String(port)],
      ...['-m', String(size), '-t', String(seconds), '--full-rtt'],
    ]);
    const at = (percentile: string) => {
      const found = new RegExp(`percentile ${percentile} =\\s+([0-9.]+)`).exec(stdout + stderr);
      if (found === null) throw new Error(`sockperf printed no ${percentile} percentile: ${stdout}${stderr}`);
      return Number(found[1]);
    };
    return { medianUs: at('50.000'), p99Us: at('99.000') };
  }

  /** sockperf's TCP server in `ns` on `port` (answers each message: the round trip's far end). */
  sockperfServer(ns: string, port: number): Promise<Background> {
    return this.spawn(ns, 'sockperf', ['server', '--tcp', '-i', '0.0.0.0', '-p', String(port)], 500);
  }

  /** nginx in `ns` on `port`: 2 workers answering every request with 1 byte and closing the connection. */
  async httpServer(ns: string, port: number): Promise<Background> {
    const dir = await mkdtemp(join(tmpdir(), `${this.prefix}-nginx-`));
    this.dirs.push(dir);
    const config = [
      'worker_processes 2;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      '  keepalive_timeout 0;',
      `  server { listen ${port} backlog=4096; location / { return 200 "x"; } }`,
      '}',
    ].join('\n');
    await writeFile(join(dir, 'nginx.conf'), `${config}\n`);
    return this.spawn(ns, 'nginx', ['-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], 500);
  }

  /** Stop every background program and delete the namespaces (with their links). */
  async remove(): Promise<void> {
    // SIGTERM first: nginx's master then ends its workers.
    for (const child of this.children) child.kill('SIGTERM');
    await Promise.race([Promise.all(this.children), sleep(3000)]);
    for (const child of this.children) {
      child.kill('SIGKILL');
      await child;
    }
    for (const ns of this.namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

/** The median of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
