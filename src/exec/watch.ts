/**
 * Watching a long-running program (`nft -j monitor`, `ip monitor rule`):
 * its stdout lines handed to a callback as they come, its end reported, its
 * pid kept in a file while it runs. Like `./run.ts`: execa, never a shell,
 * `LC_ALL=C`. For: the backend's guard of its table. May not: interpret the
 * lines (the caller does), or leave the program running when stopped.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

/** A running watch. */
export interface Watcher {
  /** Stop the program (SIGTERM, SIGKILL after 2 s); resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a watch: `argv` run, each stdout line to `onLine`, `onExit` when it
 * ends by itself; its pid in `pidFile` while it runs (so a successor can end
 * it if this process is killed: see {@link endLeftoverWatch}).
 */
export type WatchStarter = (
  argv: readonly [string, ...string[]],
  onLine: (line: string) => void,
  onExit: (detail: string) => void,
  pidFile?: string,
) => Watcher;

/** The real {@link WatchStarter}: stdout read line by line, stderr lines to `onLine` too (prefixed `# `). */
export const spawnWatch: WatchStarter = (argv, onLine, onExit, pidFile) => {
  const [program, ...args] = argv;
  const child = execa(program, args, {
    reject: false,
    buffer: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    env: { LC_ALL: 'C' },
  });
  if (pidFile !== undefined && child.pid !== undefined) {
    try {
      writeFileSync(pidFile, `${child.pid}\n`);
    } catch {
      // without a pid file, a successor cannot end it after a crash; the watch itself works
    }
  }
  let stopping = false;
  const exited = new Promise<void>((resolve) => {
    let settled = false;
    const end = (detail: string) => {
      if (settled) return;
      settled = true;
      if (pidFile !== undefined) rmSync(pidFile, { force: true });
      if (!stopping) onExit(detail);
      resolve();
    };
    void child.then((result) =>
      end(result.signal === undefined ? `exit ${result.exitCode ?? '?'}` : `signal ${result.signal}`),
    );
  });
  if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (line) => onLine(`# ${line}`));
  return {
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
};

/**
 * End a watch a killed predecessor left running: the pid in `pidFile`, if it
 * is still a `<program> ... monitor ...` process (a reused pid is left alone).
 */
export async function endLeftoverWatch(pidFile: string, program: string): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!(argv[0] ?? '').endsWith(program) || !argv.includes('monitor')) return false;
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // gone already
    }
  };
  signal('SIGTERM');
  for (let i = 0; i < 40; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true;
    await sleep(50);
  }
  signal('SIGKILL');
  return true;
}
