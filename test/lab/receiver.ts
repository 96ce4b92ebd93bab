import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { Netns } from './netns.js';

/**
 * Every TCP connection and UDP datagram a listener gets, logged as a JSON
 * line with the wall-clock arrival time: the victim's own log, which tests
 * read to count what arrived. TCP connections get the peer's address as
 * their first line, then an echo; UDP datagrams are echoed back.
 */
const SERVER = `
const net = require('node:net');
const dgram = require('node:dgram');
const log = (entry) => process.stdout.write(JSON.stringify({ t: Date.now(), ...entry }) + '\\n');
let pending = process.argv.length - 1;
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n'); };
for (const endpoint of process.argv.slice(1)) {
  const [proto, host, port] = endpoint.split(':');
  const local = host + ':' + port;
  if (proto === 'tcp') {
    net.createServer((socket) => {
      socket.on('error', () => {});
      log({ proto, local, from: socket.remoteAddress + ':' + socket.remotePort });
      socket.write(socket.remoteAddress + '\\n');
      socket.pipe(socket);
    }).listen({ host, port: Number(port) }, ready);
  } else {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (data, from) => {
      log({ proto, local, from: from.address + ':' + from.port, data: data.toString('utf8').slice(0, 64) });
      socket.send(data, from.port, from.address);
    });
    socket.bind(Number(port), host, ready);
  }
}
`;

/** One arrival at the receiver. */
export interface Arrival {
  /** Wall-clock ms of arrival. */
  readonly t: number;
  readonly proto: 'tcp' | 'udp';
  /** The address and port it arrived on, `203.0.113.10:443`. */
  readonly local: string;
  /** The address and port it came from, as the receiver saw it. */
  readonly from: string;
  /** A UDP datagram's first 64 characters. */
  readonly data?: string;
}

/** A logging receiver inside a namespace (one Node process), stopped by its pid. */
export class Receiver {
  readonly arrivals: Arrival[] = [];

  private constructor(private readonly child: ReturnType<typeof spawnReceiver>) {}

  /** Listen on every `tcp:host:port` / `udp:host:port` in `ns`; resolves once all listen. */
  static async start(ns: Netns, endpoints: readonly string[]): Promise<Receiver> {
    const child = spawnReceiver(ns, endpoints);
    const receiver = new Receiver(child);
    const ready = new Promise<void>((resolve, reject) => {
      if (child.stdout) {
        createInterface({ input: child.stdout }).on('line', (line) => {
          if (line === 'ready') resolve();
          else if (line.startsWith('{')) receiver.arrivals.push(JSON.parse(line) as Arrival);
        });
      }
      void child.then((r) => reject(new Error(`receiver exited: ${r.stderr || r.message}`)));
      setTimeout(() => reject(new Error('receiver not listening after 10 s')), 10_000).unref();
    });
    try {
      await ready;
    } catch (error) {
      await receiver.stop();
      throw error;
    }
    return receiver;
  }

  /** What arrived on `local` (`203.0.113.10:443`) since index `from` of {@link arrivals}. */
  at(local: string, from = 0): Arrival[] {
    return this.arrivals.slice(from).filter((a) => a.local === local);
  }

  /** Kill the receiver by its pid. */
  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.child;
  }
}

function spawnReceiver(ns: Netns, endpoints: readonly string[]) {
  return execa('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, ...endpoints], {
    reject: false,
    stdout: 'pipe',
    stderr: 'pipe',
  });
}

/**
 * Send UDP datagrams from a namespace: `count` of them, `intervalMs` apart,
 * from `source` (`ip:port`, which the namespace must have) to `target`, each
 * carrying `<label> <seq> <send time ms>`. Resolves with how many were sent.
 */
export async function sendUdp(
  ns: Netns,
  source: string,
  target: string,
  options: { count: number; intervalMs?: number; label?: string },
): Promise<number> {
  const script = `
const dgram = require('node:dgram');
const [source, target, count, interval, label] = process.argv.slice(1);
const [sip, sport] = source.split(':'); const [tip, tport] = target.split(':');
const socket = dgram.createSocket('udp4');
socket.on('error', () => {});
socket.bind(Number(sport), sip, async () => {
  let sent = 0;
  for (let i = 0; i < Number(count); i++) {
    await new Promise((resolve) => socket.send(label + ' ' + i + ' ' + Date.now(), Number(tport), tip, (e) => { if (!e) sent++; resolve(); }));
    if (Number(interval) > 0) await new Promise((resolve) => setTimeout(resolve, Number(interval)));
  }
  process.stdout.write(String(sent));
  socket.close();
});
`;
  const result = await execa(
    'ip',
    [
      ...['netns', 'exec', ns.name, process.execPath, '-e', script, source, target],
      ...[String(options.count), String(options.intervalMs ?? 0), options.label ?? 'x'],
    ],
    { reject: false, timeout: 120_000 },
  );
  return Number(result.stdout) || 0;
}
