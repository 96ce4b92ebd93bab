/**
 * What a lab VM namespace does on its network, with the real client programs:
 * a DHCP exchange (busybox udhcpc), a DNS query (dig), a TCP connection
 * (socat). Every command is bounded in time; failures are results, not errors.
 */
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { Netns } from './netns.js';

function inNs(ns: Netns, program: string, args: readonly string[], options: { timeout?: number; input?: string } = {}) {
  return execa('ip', ['netns', 'exec', ns.name, program, ...args], {
    reject: false,
    all: true,
    timeout: options.timeout ?? 15_000,
    input: options.input ?? '',
  });
}

/**
 * One DHCP exchange from `iface` (`udhcpc -n -q -f`, no script: nothing is
 * configured); the leased address, or `undefined` when no lease came in `tries` seconds.
 */
export async function dhcpLease(ns: Netns, iface: string, tries = 5): Promise<string | undefined> {
  const result = await inNs(ns, 'busybox', [
    ...['udhcpc', '-i', iface, '-n', '-q', '-f', '-s', '/bin/true', '-t', String(tries), '-T', '1'],
  ]);
  return /lease of ([0-9.]+) obtained/.exec(result.all ?? '')?.[1];
}

/** Give `iface` an address and a default route, as a DHCP client script would with the lease. */
export async function configure(ns: Netns, iface: string, cidr: string, router: string): Promise<void> {
  await ns.run('ip', ['addr', 'flush', 'dev', iface]);
  await ns.run('ip', ['addr', 'add', cidr, 'dev', iface]);
  await ns.run('ip', ['route', 'replace', 'default', 'via', router, 'dev', iface]);
}

/** Set an interface's MAC (down, set, up). */
export async function setMac(ns: Netns, iface: string, mac: string): Promise<void> {
  await ns.run('ip', ['link', 'set', iface, 'down']);
  await ns.run('ip', ['link', 'set', iface, 'address', mac]);
  await ns.run('ip', ['link', 'set', iface, 'up']);
}

/** A DNS answer: `status` (NOERROR, NXDOMAIN, ...) or `timeout`, and the A records. */
export interface DigResult {
  readonly status: string;
  readonly answers: readonly string[];
}

/** `dig @server name TYPE` (default A), one try of `seconds`, over UDP (`tcp`: over TCP). */
export async function dig(
  ns: Netns,
  server: string,
  name: string,
  seconds = 2,
  type = 'A',
  options: { tcp?: boolean } = {},
): Promise<DigResult> {
  const transport = options.tcp === true ? ['+tcp'] : [];
  const result = await inNs(ns, 'dig', [`@${server}`, name, type, `+time=${seconds}`, '+tries=1', ...transport]);
  const status = /status: ([A-Z]+)/.exec(result.stdout)?.[1] ?? (result.exitCode === 9 ? 'timeout' : 'error');
  const answers = [...result.stdout.matchAll(/^\S+\s+\d+\s+IN\s+A\s+([0-9.]+)$/gm)].map((m) => m[1] ?? '');
  return { status, answers };
}

/** How a TCP connection attempt ended. */
export interface TcpProbe {
  /** `connected` (the server answered), `refused` (a RST came back: the SYN got through), or `timeout`. */
  readonly outcome: 'connected' | 'refused' | 'timeout';
  /** The first line the server sent: for the peer servers, the address they saw the connection from. */
  readonly firstLine?: string;
}

/** Try a TCP connection from `ns` to `host:port` (socat), giving up after `seconds`. */
export async function tcpProbe(ns: Netns, host: string, port: number, seconds = 1): Promise<TcpProbe> {
  const result = await inNs(
    ns,
    'timeout',
    [String(seconds + 2), 'socat', '-t', '1', 'STDIO', `TCP:${host}:${port},connect-timeout=${seconds}`],
    { timeout: (seconds + 5) * 1000 },
  );
  const firstLine = result.stdout.split('\n')[0]?.trim();
  if (firstLine) return { outcome: 'connected', firstLine };
  if (/refused/i.test(result.stderr)) return { outcome: 'refused' };
  return { outcome: 'timeout' };
}

/** How many ARP replies `target` sends to requests from `iface` (busybox arping, `count` requests, 1 s apart). */
export async function arpReplies(ns: Netns, iface: string, target: string, count = 2): Promise<number> {
  const result = await inNs(ns, 'busybox', [
    'arping',
    '-I',
    iface,
    '-c',
    String(count),
    '-w',
    String(count + 1),
    target,
  ]);
  return Number(/Received (\d+) response/.exec(result.all ?? '')?.[1] ?? 0);
}

/** Whether a TCP connection from `ns` to `host:port` gets an answer (connected or refused). */
export async function reaches(ns: Netns, host: string, port: number): Promise<boolean> {
  return (await tcpProbe(ns, host, port)).outcome !== 'timeout';
}

/**
 * A long-lived TCP connection from a namespace (socat between a pipe and the
 * server): lines written go to the server, lines it sends back are collected.
 * With the peer servers (an echo after the first line), it shows whether
 * data still flows on an established connection.
 */
export class TcpStream {
  readonly lines: string[] = [];

  private constructor(
    private readonly child: ReturnType<typeof socatClient>,
    private readonly ns: Netns,
    private readonly peer: { host: string; port: number },
  ) {
    if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => this.lines.push(line));
    child.stdin?.on('error', () => undefined); // socat gone: the write simply gets no echo
  }

  /** Connect from `ns` to `host:port`. */
  static open(ns: Netns, host: string, port: number): TcpStream {
    return new TcpStream(socatClient(ns, host, port), ns, { host, port });
  }

  /** Send `line`; resolve whether it came back within `ms`. */
  async echo(line: string, ms = 1500): Promise<boolean> {
    this.child.stdin?.write(`${line}\n`);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.lines.includes(line)) return true;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return false;
  }

  /**
   * Destroy the connection's socket (`ss -K`: an orphaned socket still
   * retransmitting would keep its namespace alive after `ip netns del`), then
   * kill the client by its pid (`ip netns exec` execs socat in place).
   */
  async close(): Promise<void> {
    const filter = ['dst', this.peer.host, 'dport', '=', `:${this.peer.port}`];
    await inNs(this.ns, 'ss', ['-K', '-tn', ...filter]);
    this.child.kill('SIGKILL');
    await this.child;
  }
}

function socatClient(ns: Netns, host: string, port: number) {
  return execa('ip', ['netns', 'exec', ns.name, 'socat', 'STDIO', `TCP:${host}:${port},connect-timeout=2`], {
    stdin: 'pipe',
    stdout: 'pipe',
    reject: false,
  });
}
