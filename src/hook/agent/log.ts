/**
 * The host agent's log: one line per message to stderr and, when asked, to
 * syslog through `logger`. Used by the hook call and `host flush|reconcile`.
 * May not: write to stdout (for `migrate` and `restore`, libvirt reads the
 * hook's stdout as the domain XML).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeSync } from 'node:fs';

/** Where hook runs report: one line per message, with a level. */
export interface HookLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Wait (at most `ms`) until every line has been handed over. */
  close(ms?: number): Promise<void>;
}

const LOGGER = '/usr/bin/logger';

/**
 * A log writing each line to stderr (`ticrypt-net-hook: <message>`) and,
 * with `syslog`, to syslog/journald through `/usr/bin/logger` (Node cannot
 * open the datagram socket /dev/log). `logger` is started at the first line,
 * in parallel with the hook's own work, with stdout and stderr detached so
 * libvirt does not wait for it. Never writes to stdout.
 */
export function hookLog(options: { syslog: boolean; tag?: string; stderr?: (line: string) => void }): HookLog {
  const tag = options.tag ?? 'ticrypt-net-hook';
  // fd 2 directly: process.stderr's stream costs start-up time, and a sync write cannot be lost at exit.
  const stderr =
    options.stderr ??
    ((line: string) => {
      try {
        writeSync(2, line);
      } catch {
        // stderr closed: syslog still has it.
      }
    });
  let child: Promise<ChildProcess | undefined> | undefined;
  let syslog = options.syslog && existsSync(LOGGER);
  const pending: Promise<void>[] = [];
  // node:child_process is loaded only when syslog is on: its load is start-up time the hook does not have.
  const start = async (): Promise<ChildProcess | undefined> => {
    try {
      const { spawn } = await import('node:child_process');
      const logger = spawn(LOGGER, ['--id=' + process.pid, '-t', tag, '--prio-prefix'], {
        stdio: ['pipe', 'ignore', 'ignore'],
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      });
      logger.on('error', () => {
        syslog = false;
      });
      logger.stdin?.on('error', () => {});
      logger.unref();
      return logger;
    } catch {
      syslog = false;
      return undefined;
    }
  };

  const write = (priority: number, level: string, message: string) => {
    const line = message.replace(/[\r\n]+/g, ' ');
    stderr(`${tag}: ${level === 'info' ? '' : `${level}: `}${line}\n`);
    if (!syslog) return;
    child ??= start();
    // daemon facility (3 << 3) plus the severity.
    const chunk = `<${24 + priority}>${line}\n`;
    pending.push(
      child.then(
        (logger) =>
          new Promise<void>((resolve) => {
            if (!logger?.stdin?.writable) return resolve();
            logger.stdin.write(chunk, () => resolve());
          }),
      ),
    );
  };
  return {
    info: (message) => write(6, 'info', message),
    warn: (message) => write(4, 'warning', message),
    error: (message) => write(3, 'error', message),
    async close(ms = 100) {
      if (!child) return;
      const done = Promise.all(pending)
        .then(() => child)
        .then((logger) => new Promise<void>((resolve) => (logger?.stdin ? logger.stdin.end(resolve) : resolve())));
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
    },
  };
}
