/**
 * The edge that runs dnsmasq: check a config, start one dnsmasq per network in
 * the foreground (so its supervisor sees it die), signal it by pid, stop it.
 * Programs are run through the one program runner (`src/exec/run.ts`), never
 * a shell. May not: write the config (the renderer and the fleet do).
 *
 * What a change needs (dnsmasq(8), NOTES: "SIGHUP does NOT re-read the configuration file"):
 * - a new host entry file: nothing (dnsmasq reads it via inotify);
 * - a removed or changed host entry file: SIGHUP ({@link DnsmasqProcess.reload});
 * - anything in the config file (upstream resolvers, ranges, reservations):
 *   a restart ({@link DnsmasqProcess.restart}). Leases survive a restart (the
 *   lease file); the DNS cache does not.
 */
import { createInterface } from 'node:readline';
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DnsmasqProcessError } from '../../errors/dnsmasq-process-error.js';
import { runProgram, startProgram } from '../../exec/run.js';
import { dnsmasqCheck } from '../checks.js';

/** How to run dnsmasq. */
export interface DnsmasqRunOptions {
  /** The dnsmasq program. Default `dnsmasq` (found on PATH). */
  readonly program?: string;
  /** Run inside this network namespace (`ip netns exec NAME`, which execs dnsmasq in place: the pid stays dnsmasq's). */
  readonly netns?: string;
}

/** How to start one network's dnsmasq. */
export interface DnsmasqStartOptions extends DnsmasqRunOptions {
  /** The rendered config file. */
  readonly confFile: string;
  /** The `pid-file` the config names: removed before start, and awaited as the sign dnsmasq is up. */
  readonly pidFile: string;
  /** Each line dnsmasq writes to stderr (its log, with `log-facility=-`). Default: dropped. */
  readonly onLog?: (line: string) => void;
  /** How long to wait for the pid file, in ms. Default 10000. */
  readonly readyTimeout?: number;
}

/** How a dnsmasq process ended. */
export interface DnsmasqExit {
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
}

/**
 * Check a config file with dnsmasq's own parser (`dnsmasq --test`).
 *
 * @throws {DnsmasqProcessError} `E_DNSMASQ_PROCESS` with dnsmasq's complaint, e.g. `bad option at line 3`.
 */
export async function checkDnsmasqConfig(confFile: string, options: DnsmasqRunOptions = {}): Promise<void> {
  const result = await runProgram(
    options.program ?? 'dnsmasq',
    ['--test', `--conf-file=${dnsmasqCheck.path('confFile', confFile)}`],
    options.netns === undefined ? {} : { netns: options.netns },
  );
  if (result.exitCode === 0) return;
  throw new DnsmasqProcessError({ ...result, action: 'checking' }, confFile);
}

/** The pid in a pid file, or `undefined` when there is none (or it holds no pid). */
export async function readPidFile(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Send `signal` to `pid` (0: only check that it exists). Returns false when no such process exists. */
export function signalPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/**
 * Stop a process by pid (e.g. a dnsmasq a previous daemon left, found by its pid
 * file): SIGTERM, then SIGKILL after `timeoutMs`. Resolves once it is gone.
 */
export async function stopPid(pid: number, timeoutMs = 5000): Promise<void> {
  if (!signalPid(pid, 'SIGTERM')) return;
  const deadline = Date.now() + timeoutMs;
  let killed = false;
  while (!(await pidReleased(pid))) {
    if (!killed && Date.now() > deadline) {
      signalPid(pid, 'SIGKILL');
      killed = true;
    }
    await sleep(20);
  }
}

/**
 * Whether `pid` has released its files (sockets included): no such process,
 * or a zombie (which still answers signal 0, so `kill -0` cannot tell). An
 * exiting process loses its command line before it closes its sockets, so
 * only this state says a successor may bind.
 */
export async function pidReleased(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined || /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

/**
 * One running dnsmasq, started by {@link DnsmasqProcess.start} in the
 * foreground (`--keep-in-foreground`), so it stays this process's child.
 */
export class DnsmasqProcess {
  /** dnsmasq's pid (also in the pid file). */
  readonly pid: number;
  /** Resolves when dnsmasq ends, however it ends. */
  readonly exited: Promise<DnsmasqExit>;
  private readonly options: DnsmasqStartOptions;
  private readonly command: readonly string[];
  private readonly stderrTail: string[];
  private ended = false;

  private constructor(
    options: DnsmasqStartOptions,
    pid: number,
    exited: Promise<DnsmasqExit>,
    commandLine: readonly string[],
    tail: string[],
  ) {
    this.options = options;
    this.pid = pid;
    this.exited = exited.then((exit) => {
      this.ended = true;
      return exit;
    });
    this.command = commandLine;
    this.stderrTail = tail;
  }

  /**
   * Start dnsmasq with `--keep-in-foreground --conf-file=<confFile>` and wait
   * until it has written its pid file (its sockets are bound by then).
   *
   * @throws {DnsmasqProcessError} when dnsmasq exits first (its stderr says why) or is not up in time.
   * @example
   * const dnsmasq = await DnsmasqProcess.start({ confFile, pidFile, netns: 'backend' });
   * dnsmasq.reload(); // after removing a host entry
   * await dnsmasq.stop();
   */
  static async start(options: DnsmasqStartOptions): Promise<DnsmasqProcess> {
    const pidFile = dnsmasqCheck.path('pidFile', options.pidFile);
    const confFile = dnsmasqCheck.path('confFile', options.confFile);
    await rm(pidFile, { force: true });
    const { command: commandLine, subprocess: child } = startProgram(
      options.program ?? 'dnsmasq',
      ['--keep-in-foreground', `--conf-file=${confFile}`],
      options.netns === undefined ? {} : { netns: options.netns },
    );
    const tail: string[] = [];
    if (child.stderr) {
      createInterface({ input: child.stderr }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        options.onLog?.(line);
      });
    }
    const exited: Promise<DnsmasqExit> = child.then((result) => ({
      exitCode: result.exitCode,
      signal: result.signal,
    }));
    const pid = child.pid;
    const failure = (exit: DnsmasqExit | undefined, reason: string) =>
      new DnsmasqProcessError(
        {
          command: commandLine,
          netns: options.netns,
          ...(exit?.exitCode === undefined ? {} : { exitCode: exit.exitCode }),
          ...(exit?.signal === undefined ? {} : { signal: exit.signal }),
          stderr: tail.length > 0 ? tail.join('\n') : reason,
          action: 'starting',
        },
        `with ${confFile}`,
      );
    if (pid === undefined) throw failure(await exited, 'it could not be spawned');

    let exit: DnsmasqExit | undefined;
    void exited.then((e) => (exit = e));
    const deadline = Date.now() + (options.readyTimeout ?? 10_000);
    while ((await readPidFile(pidFile)) !== pid) {
      if (exit !== undefined) {
        await sleep(20); // let the last stderr lines arrive
        throw failure(exit, 'it exited before writing its pid file');
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw failure(await exited, `no pid file ${pidFile} after ${options.readyTimeout ?? 10_000} ms`);
      }
      await sleep(20);
    }
    return new DnsmasqProcess(options, pid, exited, commandLine, tail);
  }

  /** Whether it is still running. */
  get running(): boolean {
    return !this.ended;
  }

  /**
   * SIGHUP: dnsmasq re-reads the host entry directory (dropping removed
   * entries) and clears its DNS cache. It does not re-read the config file.
   */
  reload(): void {
    if (this.ended || !signalPid(this.pid, 'SIGHUP')) {
      throw new DnsmasqProcessError(
        { command: this.command, stderr: this.stderrTail.join('\n'), action: 'reloading' },
        `pid ${this.pid} (not running)`,
      );
    }
  }

  /** SIGTERM, SIGKILL after `timeoutMs`; resolves when it has exited. Stopping a stopped process does nothing. */
  async stop(timeoutMs = 5000): Promise<DnsmasqExit> {
    if (!this.ended) {
      signalPid(this.pid, 'SIGTERM');
      const timer = setTimeout(() => signalPid(this.pid, 'SIGKILL'), timeoutMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** Stop, then start again with the same options: what a changed config file needs. */
  async restart(): Promise<DnsmasqProcess> {
    await this.stop();
    return DnsmasqProcess.start(this.options);
  }
}
