/**
 * Lock files for the spool and the generation counter: exclusive, with stale
 * locks broken, usable from a hook run and the timer alike. May not: wait
 * without a deadline.
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';

/** Releases a lock taken by {@link tryLock}. */
export type Release = () => void;

/** A lock older than this is broken even if its pid looks alive (pid reuse, frozen holder). */
const STALE_MS = 5 * 60_000;

/**
 * Take an exclusive lock file without waiting: created with O_EXCL and
 * holding the owner's pid. A lock whose owner is dead (or that is older than
 * five minutes) is broken: renamed away first, so of two processes breaking
 * it at once only one succeeds. Node has no flock(2); this is the portable
 * equivalent on one local file system.
 *
 * @returns a release function, or `undefined` when another live process holds it.
 */
export function tryLock(path: string): Release | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          // Broken by another process as stale: nothing left to release.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!isStale(path)) return undefined;
    try {
      const aside = `${path}.stale.${process.pid}.${attempt}`;
      renameSync(path, aside);
      unlinkSync(aside);
    } catch {
      // Someone else broke or released it first; try again.
    }
  }
  return undefined;
}

/**
 * Take a lock file, retrying every few milliseconds until `deadline`
 * (`Date.now()` scale).
 *
 * @returns a release function, or `undefined` when the deadline passed first.
 */
export async function lock(path: string, deadline: number): Promise<Release | undefined> {
  let wait = 1;
  for (;;) {
    const release = tryLock(path);
    if (release || Date.now() >= deadline) return release;
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, Math.max(1, deadline - Date.now()))));
    wait = Math.min(wait * 2, 20);
  }
}

/**
 * {@link lock} for very short critical sections, waiting synchronously.
 *
 * @returns a release function, or `undefined` when the deadline passed first.
 */
export function lockSync(path: string, deadline: number): Release | undefined {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const release = tryLock(path);
    if (release || Date.now() >= deadline) return release;
    Atomics.wait(cell, 0, 0, 1);
  }
}

function isStale(path: string): boolean {
  try {
    const pid = Number(readFileSync(path, 'utf8'));
    if (Date.now() - statSync(path).mtimeMs > STALE_MS) return true;
    if (!Number.isSafeInteger(pid) || pid <= 0) {
      // Created but not yet written: give its owner a moment.
      return Date.now() - statSync(path).mtimeMs > 1000;
    }
    process.kill(pid, 0);
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ESRCH: the owner is gone. ENOENT: released meanwhile (not stale; the retry will take it).
    return code === 'ESRCH';
  }
}
