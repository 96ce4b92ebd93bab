/**
 * A second program runner, for a measured reason: the hook runs `ovs-vsctl`
 * and `ovs-ofctl` inside libvirt's hook call, and loading execa costs every
 * hook run 25-50 ms (measured here: an esbuild bundle importing execa starts
 * that much slower than one importing `node:child_process`). Same contract as
 * `./run.ts`' runners: an argument list, never a shell; `LC_ALL=C`; bounded;
 * a failed run resolves with its result. Everything else uses `./run.ts`.
 * May not: grow features the hook does not need (namespaces, daemons).
 */
import type { ProgramResult, ProgramRunner } from './run.js';

/** Largest stdout or stderr kept from one run. */
const MAX_OUTPUT = 16 * 1024 * 1024;

/**
 * A {@link ProgramRunner} on `node:child_process`, each run killed (SIGKILL)
 * after `timeoutMs()` milliseconds, asked at the start of each run (so a
 * caller with a deadline gives each call what is left).
 *
 * @example const run = lightRunner(() => Math.min(1000, deadline - Date.now()));
 */
export function lightRunner(timeoutMs: () => number): ProgramRunner {
  return async (program, args, options = {}) => {
    // Loaded at the first run: a hook run that starts no program does not pay for it.
    const { spawn } = await import('node:child_process');
    return new Promise<ProgramResult>((resolve) => {
      const limit = Math.max(1, Math.floor(timeoutMs()));
      const command = [program, ...args];
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let timedOut = false;
      let failure: Error | undefined;
      const child = spawn(program, args, {
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, limit);
      const keep = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_OUTPUT) into.push(chunk);
      };
      child.stdout?.on('data', keep(out));
      child.stderr?.on('data', keep(err));
      child.on('error', (error) => (failure = error));
      if (options.input !== undefined) {
        child.stdin?.on('error', () => {});
        child.stdin?.end(options.input);
      }
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const stderr = Buffer.concat(err).toString('utf8');
        const why = timedOut ? `timed out after ${limit} ms` : failure !== undefined ? failure.message : '';
        resolve({
          command,
          exitCode: timedOut || failure !== undefined ? undefined : (code ?? undefined),
          signal: signal ?? undefined,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: why !== '' && stderr === '' ? why : why !== '' ? `${why}: ${stderr}` : stderr,
        });
      });
    });
  };
}
