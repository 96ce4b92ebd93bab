/**
 * The host's durable queue of events the backend has not confirmed: fsynced,
 * renamed into place, in generation order. Written by hook runs, drained by the
 * next run, `host flush` and the timer. May not: send anything (that is
 * `deliver.ts`).
 */
import { closeSync, fsyncSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HookSpoolError } from '../../errors/hook-spool-error.js';
import { type HookEvent, nicKey } from './events.js';
import { createExclusive, writeExclusive } from './safe-write.js';
import { syncDir } from './sync-dir.js';

/** One spooled event and its file. */
export interface SpoolEntry {
  readonly file: string;
  readonly event: HookEvent;
}

const ENTRY = /^[0-9]{16}-[0-9a-f]{12}-[a-z][a-z0-9_-]{0,31}-(register|deregister)\.json$/;

/**
 * The host's durable queue of events the backend has not confirmed:
 * `<spoolDir>/events/<generation>-<mac>-<network>-<op>.json`, one file per
 * event, written to a temporary name, fsynced, renamed into place, and the
 * directory fsynced, so an entry survives a crash or reboot once `append`
 * returns. Files are created without following symlinks (`O_EXCL | O_NOFOLLOW`). File names sort in generation order, which is the delivery order.
 * Entries the backend refuses for good (a MAC conflict, an unknown network)
 * move to `<spoolDir>/failed/` with the reason, so they neither block later
 * events nor vanish.
 */
export class Spool {
  readonly events: string;
  readonly failed: string;

  constructor(readonly dir: string) {
    this.events = join(dir, 'events');
    this.failed = join(dir, 'failed');
  }

  /** Create the spool directory if missing (a host that never spooled has none; the flush lock lives in it). */
  ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Store an event durably.
   *
   * @throws {HookSpoolError} `E_HOOK_SPOOL` when it cannot be written.
   */
  append(event: HookEvent): string {
    const name = entryName(event);
    const file = join(this.events, name);
    const tmp = join(this.events, `.${name}.${process.pid}.tmp`);
    try {
      mkdirSync(this.events, { recursive: true, mode: 0o700 });
      const fd = createExclusive(tmp);
      try {
        writeSync(fd, `${JSON.stringify({ format: 1, ...event, spooledAt: new Date().toISOString() })}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
      syncDir(this.events);
      return file;
    } catch (error) {
      throw new HookSpoolError(
        file,
        `Cannot spool ${event.op} of ${event.nic.mac} on ${event.nic.network} in ${this.events}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** Every spooled event, oldest generation first. Unreadable entries are moved to `failed/`. */
  list(): SpoolEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.events);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new HookSpoolError(this.events, `Cannot read the spool ${this.events}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const entries: SpoolEntry[] = [];
    for (const name of names.filter((n) => ENTRY.test(n)).sort()) {
      const file = join(this.events, name);
      try {
        entries.push({ file, event: readEvent(readFileSync(file, 'utf8'), file) });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // delivered by another run meanwhile
        this.moveToFailed(file, `unreadable entry: ${(error as Error).message}`);
      }
    }
    return entries;
  }

  /** Whether nothing is spooled (one readdir). */
  isEmpty(): boolean {
    try {
      return !readdirSync(this.events).some((n) => ENTRY.test(n));
    } catch {
      return true;
    }
  }

  /** The NICs (see `nicKey`) that have spooled events. */
  pendingKeys(): Set<string> {
    return new Set(this.list().map((e) => nicKey(e.event.nic)));
  }

  /** Drop a delivered entry. */
  remove(entry: SpoolEntry): void {
    try {
      unlinkSync(entry.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Set an entry the backend refused for good aside, with the reason beside it. */
  deadLetter(entry: SpoolEntry, reason: string): void {
    this.moveToFailed(entry.file, reason);
  }

  private moveToFailed(file: string, reason: string): void {
    const name = file.slice(this.events.length + 1);
    try {
      mkdirSync(this.failed, { recursive: true, mode: 0o700 });
      writeExclusive(join(this.failed, `${name}.reason`), `${reason}\n`);
      renameSync(file, join(this.failed, name));
      syncDir(this.failed);
    } catch {
      // Leave it where it is; the next run tries again.
    }
  }
}

function entryName(event: HookEvent): string {
  return `${String(event.generation).padStart(16, '0')}-${event.nic.mac.replaceAll(':', '')}-${event.nic.network}-${event.op}.json`;
}

function readEvent(text: string, file: string): HookEvent {
  const data = JSON.parse(text) as Partial<HookEvent> & { nic?: Partial<HookEvent['nic']> };
  const nic = data.nic;
  if (
    (data.op !== 'register' && data.op !== 'deregister') ||
    !Number.isSafeInteger(data.generation) ||
    typeof nic?.vmUuid !== 'string' ||
    typeof nic.vmName !== 'string' ||
    typeof nic.mac !== 'string' ||
    typeof nic.network !== 'string'
  ) {
    throw new HookSpoolError(file, 'expected {op, generation, nic:{vmUuid, vmName, mac, network}}');
  }
  return {
    op: data.op,
    generation: data.generation as number,
    nic: { vmUuid: nic.vmUuid, vmName: nic.vmName, mac: nic.mac, network: nic.network },
    cause: typeof data.cause === 'string' ? data.cause : 'spool',
    ...(data.op === 'register' && data.migration === 'incoming' ? { migration: 'incoming' as const } : {}),
  };
}
