/**
 * The backend service as production runs it (`node dist/cli/main.js backend
 * serve ...`), inside a lab namespace, under a small reaper that becomes the
 * parent of anything the service leaves behind (PR_SET_CHILD_SUBREAPER): a
 * test can then see its orphans, end them by pid, and they get reaped even
 * where pid 1 reaps nothing.
 */
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Netns } from './netns.js';

/** The repository's built CLI (dist is built before the tests run). */
export const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');

// Fork the command, write its pid, then reap every child (its orphans included) until none is left.
const REAPER = `
use strict; use Config;
my $pidfile = shift @ARGV;
syscall($Config{archname} =~ /aarch64/ ? 167 : 157, 36, 1, 0, 0, 0);
my $pid = fork() // die "fork: $!";
if ($pid == 0) { exec { $ARGV[0] } @ARGV or die "exec: $!"; }
open(my $fh, '>', "$pidfile.tmp") or die; print $fh "$pid\\n"; close $fh; rename("$pidfile.tmp", $pidfile);
my $status = 0;
while ((my $w = wait()) != -1) { $status = $? if $w == $pid; }
exit($status >> 8);
`;

/** A process, as /proc shows it. */
export interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  /** argv, split. */
  readonly argv: readonly string[];
}

/** Every process whose parent is `ppid`. */
export async function childrenOf(ppid: number): Promise<ProcInfo[]> {
  const found: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
    const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(parent) !== ppid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    found.push({ pid: Number(entry), ppid, state: state ?? '?', argv: cmdline.split('\0').filter(Boolean) });
  }
  return found;
}

/** Whether a process exists and is not a zombie. */
export async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** SIGTERM, then SIGKILL after `ms`; resolves when the process is gone. Never throws. */
export async function endPid(pid: number, ms = 3000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + ms;
  while (await alive(pid)) {
    if (Date.now() > deadline) signal('SIGKILL');
    await sleep(25);
  }
}

/** How to start the service. */
export interface ServiceOptions {
  readonly netns: Netns;
  /** Arguments after `node dist/cli/main.js`. */
  readonly args: readonly string[];
  /** Where its stdout and stderr go (appended). */
  readonly logFile: string;
  /** Where the reaper writes the service's pid. */
  readonly pidFile: string;
  /** `GET <url>/healthz` answering 200 means it is up. */
  readonly url: string;
}

/** A running backend service. */
export class BackendService {
  private constructor(
    private readonly reaper: ReturnType<typeof spawnReaper>,
    /** The service's own pid (`ip netns exec` execs node in place). */
    readonly pid: number,
  ) {}

  /** The reaper's pid: the parent of the service and of whatever it orphans. */
  get reaperPid(): number {
    return this.reaper.pid ?? -1;
  }

  /** Start it and wait until `/healthz` answers (at most `ms`). */
  static async start(options: ServiceOptions, ms = 20_000): Promise<BackendService> {
    const reaper = spawnReaper(options);
    const deadline = Date.now() + ms;
    let pid: number | undefined;
    let exited = false;
    void reaper.then(() => (exited = true));
    while (Date.now() < deadline && !exited) {
      pid ??= Number((await readFile(options.pidFile, 'utf8').catch(() => '')).trim()) || undefined;
      const healthy = await fetch(`${options.url}/healthz`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (pid !== undefined && healthy) return new BackendService(reaper, pid);
      await sleep(100);
    }
    const service = pid === undefined ? undefined : new BackendService(reaper, pid);
    await service?.stop();
    if (service === undefined) reaper.kill('SIGKILL');
    const log = await readFile(options.logFile, 'utf8').catch(() => '');
    throw new Error(`backend service not up after ${ms} ms; its log ends:\n${log.split('\n').slice(-15).join('\n')}`);
  }

  /** kill -9 the service (not its children), and wait until it is gone. */
  async kill9(): Promise<void> {
    process.kill(this.pid, 'SIGKILL');
    while (await alive(this.pid)) await sleep(10);
  }

  /** What the service left running: the reaper's children other than the service. */
  async orphans(): Promise<ProcInfo[]> {
    return (await childrenOf(this.reaperPid)).filter((p) => p.pid !== this.pid && p.state !== 'Z');
  }

  /**
   * Stop the service (SIGTERM, then SIGKILL), end anything it left, by pid, except the audit logger (ulogd,
   * which the service starts to outlive it, src/backend/audit/ulogd-process.ts: ending it with the service
   * loses every end event of the gap, as production's own ulogd unit would not; a test ends it with
   * `stopUlogd`); resolves when the reaper exited, or, while the logger runs, once the rest is gone (the
   * reaper stays its parent and exits after it).
   */
  async stop(): Promise<void> {
    await endPid(this.pid, 5000);
    const left = await this.orphans();
    for (const orphan of left) if (!isAuditLogger(orphan)) await endPid(orphan.pid);
    if (!left.some(isAuditLogger)) await this.reaper;
  }
}

/** ulogd, run by the service's flow audit. */
function isAuditLogger(p: ProcInfo): boolean {
  return /(^|\/)ulogd$/.test(p.argv[0] ?? '');
}

function spawnReaper(options: ServiceOptions) {
  const command = ['ip', 'netns', 'exec', options.netns.name, process.execPath, CLI, ...options.args];
  const log = { file: options.logFile, append: true };
  return execa('perl', ['-e', REAPER, options.pidFile, ...command], {
    reject: false,
    stdin: 'ignore',
    stdout: log,
    stderr: log,
  });
}
