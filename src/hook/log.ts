import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

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
  const stderr = options.stderr ?? ((line: string) => process.stderr.write(line));
  let child: ChildProcess | undefined;
  let syslog = options.syslog && existsSync(LOGGER);
  const pending: Promise<void>[] = [];

  const write = (priority: number, level: string, message: string) => {
    const line = message.replace(/[\r\n]+/g, ' ');
    stderr(`${tag}: ${level === 'info' ? '' : `${level}: `}${line}\n`);
    if (!syslog) return;
    try {
      if (!child) {
        child = spawn(LOGGER, ['--id=' + process.pid, '-t', tag, '--prio-prefix'], {
          stdio: ['pipe', 'ignore', 'ignore'],
          env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
        });
        child.on('error', () => {
          syslog = false;
        });
        child.stdin?.on('error', () => {});
        child.unref();
      }
      // daemon facility (3 << 3) plus the severity.
      const chunk = `<${24 + priority}>${line}\n`;
      pending.push(new Promise((resolve) => child?.stdin?.write(chunk, () => resolve()) ?? resolve()));
    } catch {
      syslog = false;
    }
  };
  return {
    info: (message) => write(6, 'info', message),
    warn: (message) => write(4, 'warning', message),
    error: (message) => write(3, 'error', message),
    async close(ms = 100) {
      const stdin = child?.stdin;
      const done = Promise.all(pending).then(
        () => new Promise<void>((resolve) => (stdin ? stdin.end(resolve) : resolve())),
      );
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
      (stdin as { unref?: () => void } | undefined)?.unref?.();
    },
  };
}
