/**
 * A real `ssh` (Debian's openssh-client) from a lab namespace, with the lab
 * guests' key: one command ({@link sshRun}) or a long-lived session running
 * `cat` on the far side ({@link SshSession}), whose echo shows whether data
 * still flows and whose exit shows that the connection was cut.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { labSshKey } from './guest/guest.js';
import type { Netns } from './netns.js';

/** Where to connect: `host:port`, optionally from a given local address (`ssh -b`). */
export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly bind?: string;
}

/** `ip` arguments running `command` over SSH from `ns` (Debian's ssh, the lab key, batch mode). */
export async function sshArgs(ns: Netns, target: SshTarget, command: string): Promise<string[]> {
  const key = await labSshKey();
  return [
    ...['netns', 'exec', ns.name, 'ssh', '-T', '-i', key.file, '-p', String(target.port)],
    ...['-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=4'],
    ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
    ...(target.bind === undefined ? [] : ['-b', target.bind]),
    `root@${target.host}`,
    command,
  ];
}

/** Run `command` over SSH from `ns`; every failure is a result (exit 255: no connection). */
export async function sshRun(ns: Netns, target: SshTarget, command: string, seconds = 15) {
  return execa('ip', await sshArgs(ns, target, command), { reject: false, timeout: seconds * 1000, input: '' });
}

function spawnSsh(args: string[]) {
  return execa('ip', args, { reject: false, stdin: 'pipe', buffer: false });
}

/** An open SSH session running `cat`: lines written come back while the connection lives. */
export class SshSession {
  readonly lines: string[] = [];
  exitCode: number | undefined;
  stderr = '';

  private constructor(private readonly child: ReturnType<typeof spawnSsh>) {
    if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => this.lines.push(line));
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    child.stdin?.on('error', () => undefined); // ssh gone: the write simply gets no echo
    void child.then((result) => (this.exitCode = result.exitCode ?? -1));
  }

  /** Open the session and wait until a first line comes back (at most `ms`). */
  static async open(ns: Netns, target: SshTarget, ms = 15_000): Promise<SshSession> {
    const session = new SshSession(spawnSsh(await sshArgs(ns, target, 'cat')));
    if (!(await session.echo('hello', ms))) {
      await session.close();
      throw new Error(`ssh to ${target.host}:${target.port} gave no echo in ${ms} ms: ${session.stderr}`);
    }
    return session;
  }

  /** Send `line`; resolve whether it came back within `ms`. */
  async echo(line: string, ms = 3000): Promise<boolean> {
    this.child.stdin?.write(`${line}\n`);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.lines.includes(line)) return true;
      await sleep(25);
    }
    return false;
  }

  /** Resolve ssh's exit code once it exits, or `undefined` if it still runs after `ms`. */
  async exited(ms: number): Promise<number | undefined> {
    const deadline = Date.now() + ms;
    while (this.exitCode === undefined && Date.now() < deadline) await sleep(50);
    return this.exitCode;
  }

  /** Kill ssh by its pid (`ip netns exec` execs it in place) and wait for it. */
  async close(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.child;
  }
}
