import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { lockSync } from './lock.js';

/** The wall clock in microseconds since the epoch (about 1.7e15: well inside 2^53). */
export function microsNow(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The host's next event generation: `max(last + 1, now in µs)`, persisted in
 * `<dir>/generation` (fsynced) under an exclusive lock, so
 *
 * - every event on this host gets a larger number than every earlier one,
 *   concurrent hook runs included (the lock serializes the read-increment-write);
 * - it survives reboots (the file), a lost or corrupt file (the clock), and a
 *   clock stepped back (the file);
 * - values stay below 2^53 for the next 250 years.
 *
 * If the lock cannot be had within 250 ms (a wedged file system), the clock
 * alone is used rather than blocking the VM.
 */
export function nextGeneration(dir: string, now: () => number = microsNow): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'generation');
  const release = lockSync(join(dir, 'generation.lock'), Date.now() + 250);
  try {
    const generation = Math.min(Math.max(now(), readGeneration(dir) + 1), Number.MAX_SAFE_INTEGER);
    if (release) {
      const tmp = `${file}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${generation}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    }
    return generation;
  } finally {
    release?.();
  }
}

/** The last generation handed out on this host (0 when none). */
export function readGeneration(dir: string): number {
  try {
    const value = Number(readFileSync(join(dir, 'generation'), 'utf8').trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : 0;
  } catch {
    return 0;
  }
}
