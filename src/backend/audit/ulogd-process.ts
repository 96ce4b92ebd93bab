/**
 * The edge that keeps ulogd running for the backend when no service manager
 * does (the lab; production runs systemd/ticrypt-net-ulogd.service): start
 * it detached with a pid file, so it outlives a restart of the service
 * (events keep being written while the service is away, and the service
 * adopts it again), check it by pid, start it again when it is gone.
 * Whatever supervises the service must leave it running: the kernel drops
 * the end event of a flow that ends while no logger listens (a lab harness
 * that ended it with the service lost ~35,000 of 69,505 flows of a burst,
 * 2026-12-01). Under systemd (`KillMode=control-group`) run it as its own
 * unit instead (`--audit-ulogd external`).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { AuditLoggerError } from '../../errors/audit-logger-error.js';
import { readPidFile, signalPid, stopPid } from '../dnsmasq/process.js';

/** How to run ulogd. */
export interface UlogdRunOptions {
  readonly confFile: string;
  readonly pidFile: string;
  /** The ulogd program (default `/usr/sbin/ulogd`). */
  readonly program?: string;
}

/** Whether the ulogd of `pidFile` runs; its pid if so. */
export async function runningUlogd(pidFile: string): Promise<number | undefined> {
  const pid = await readPidFile(pidFile);
  if (pid === undefined || !signalPid(pid, 0)) return undefined;
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return comm.trim() === 'ulogd' ? pid : undefined;
}

/**
 * The running ulogd's pid, starting one (detached, in this process's network
 * namespace) when none runs. `started` says whether this call started it.
 */
export async function ensureUlogd(options: UlogdRunOptions): Promise<{ pid: number; started: boolean }> {
  const running = await runningUlogd(options.pidFile);
  if (running !== undefined) return { pid: running, started: false };
  const child = spawn(options.program ?? '/usr/sbin/ulogd', ['-c', options.confFile, '-p', options.pidFile], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new AuditLoggerError(options.pidFile, options.confFile, 'the program could not be run');
  // ulogd writes its pid file before it enters its loop; its sockets are open by then.
  const deadline = Date.now() + 5000;
  while ((await runningUlogd(options.pidFile)) !== pid) {
    if (Date.now() > deadline || !signalPid(pid, 0))
      throw new Error(`ulogd did not start (pid ${pid}, ${options.confFile})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { pid, started: true };
}

/** Stop the ulogd of `pidFile`, if it runs. */
export async function stopUlogd(pidFile: string): Promise<void> {
  const pid = await runningUlogd(pidFile);
  if (pid !== undefined) await stopPid(pid);
}
