/**
 * The host's generation counter: strictly increasing across concurrent hook
 * runs, crashes, reboots and clock steps, so a late event never undoes a newer
 * one. Used by every hook run and by reconcile. May not: block a VM start for
 * long (the lock is given up after 250 ms) or call the network.
 */
import { closeSync, fsyncSync, mkdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { lockSync } from './lock.js';
import { createExclusive } from './safe-write.js';
import { syncDir } from './sync-dir.js';

/** The wall clock in microseconds since the epoch (about 1.8e15: well inside 2^53). */
export function microsNow(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** How far ahead of the generations handed out the fsynced ceiling is put: 10 minutes of microseconds. */
const RESERVE = 600e6;

/** What `<dir>/generation` holds. */
interface GenerationState {
  /** The last generation handed out (rewritten at every event, not fsynced). */
  readonly last: number;
  /** A copy of `generation.ceiling` as last fsynced. */
  readonly ceiling: number;
  /** The kernel boot id this state was written under. */
  readonly boot: string;
}

/**
 * The host's next event generation, strictly greater than every generation
 * handed out on this host before, concurrent hook runs, reboots, crashes and
 * a clock stepped back included; about the wall clock in microseconds, so a
 * lost state still yields values above everything sent before.
 *
 * Under an exclusive lock (`generation.lock`; the read-increment-write takes
 * microseconds) the next value is `max(now µs, last + 1)`. `<dir>/generation`
 * holds `last ceiling boot-id` and is rewritten at every event without fsync
 * (an fsync costs milliseconds per VM start on a busy disk). What makes that
 * safe is `<dir>/generation.ceiling`: a bound on every value handed out,
 * raised to ten minutes ahead (fsynced, then the directory) whenever a value
 * would pass it. After a crash or reboot (the kernel's boot id changed, or the
 * state file is unreadable) the next value is `max(now, ceiling + 1)`, above
 * anything the lost writes handed out. So: one fsync per ten minutes of
 * events, and one after each boot.
 *
 * If the lock cannot be had within 250 ms (a wedged file system), the clock
 * alone is used rather than blocking the VM.
 */
export function nextGeneration(dir: string, now: () => number = microsNow): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'generation');
  const ceilingFile = join(dir, 'generation.ceiling');
  const release = lockSync(join(dir, 'generation.lock'), Date.now() + 250);
  try {
    const boot = bootId();
    const state = readState(file);
    const trusted = state !== undefined && state.boot === boot;
    const floor = trusted ? state.last : readNumber(ceilingFile);
    const generation = Math.min(Math.max(now(), floor + 1), Number.MAX_SAFE_INTEGER);
    if (!release) return generation;
    let ceiling = trusted ? state.ceiling : 0;
    if (generation > ceiling) {
      ceiling = Math.min(generation + RESERVE, Number.MAX_SAFE_INTEGER);
      writeFile(ceilingFile, `${ceiling}\n`, true);
    }
    writeFile(file, `${generation} ${ceiling} ${boot}\n`, false);
    return generation;
  } finally {
    release?.();
  }
}

/** The last generation handed out on this host (0 when none). */
export function readGeneration(dir: string): number {
  return readState(join(dir, 'generation'))?.last ?? 0;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function readState(file: string): GenerationState | undefined {
  try {
    const [last, ceiling, boot] = readFileSync(file, 'utf8').trim().split(/\s+/);
    const state = { last: Number(last), ceiling: Number(ceiling), boot: boot ?? '' };
    return Number.isSafeInteger(state.last) && Number.isSafeInteger(state.ceiling) && state.last <= state.ceiling
      ? state
      : undefined;
  } catch {
    return undefined;
  }
}

function readNumber(file: string): number {
  try {
    const value = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : 0;
  } catch {
    return 0;
  }
}

function writeFile(file: string, text: string, durable: boolean): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = createExclusive(tmp);
  try {
    writeSync(fd, text);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  if (durable) syncDir(dirname(file));
}
