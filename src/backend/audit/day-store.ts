/**
 * The append-only audit store: records as hash-chained JSON lines, one file
 * per UTC day (continued in `-N` parts past the rotation size), files opened
 * `O_APPEND|O_EXCL` when created and never rewritten; whole old files
 * removed by retention, the removal itself chained. The one side-effecting
 * writer of the day files.
 *
 * Durability: one `write` per batch, then `fdatasync` (every batch, or
 * batches within `fsyncIntervalMs` share one); `append` resolves only once
 * its records are durable, so a reader may then save its cursor.
 *
 * Crash safety: at open (and after a failed write) the last file's tail is
 * checked; a torn tail is left as it is, reported (`opened.torn`, a `torn`
 * event in the chain) and the chain continues from the last valid line in a
 * new part file.
 */
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditStoreError } from '../../errors/audit-store-error.js';
import type { AuditStoreSettings } from '../../site/audit-store.js';
import { type DayFile, dayFileName, dayFilesOf, utcDay } from './day-files.js';
import { type ChainHead, encodeLines, GENESIS_HEAD, type StoredRecord } from './line.js';
import type { AuditRecord, AuditSink } from './record.js';
import { planRetention, type SizedDayFile } from './retention.js';
import type { RemovedFile, RetentionEvent, TornEvent } from './store-event.js';
import { readTail } from './tail.js';

/** How to open an {@link AuditStore}. */
export interface AuditStoreOptions {
  /** The site's `backend.auditStore`. */
  readonly settings: AuditStoreSettings;
  /** The clock (tests); default `() => new Date()`. */
  readonly now?: () => Date;
}

/** Counters of what the store did, for `/metrics`. */
export interface AuditStoreStats {
  /** Producer records appended and durable. */
  records: number;
  /** Batches written (one `write` each). */
  batches: number;
  /** Bytes written. */
  bytes: number;
  /** `fdatasync` calls. */
  fsyncs: number;
  /** Files removed by retention. */
  filesRemoved: number;
  /** Torn tails found (at open or after a failed write). */
  tornTails: number;
  /** Appends that failed (write, fsync or file creation): their records are not stored. */
  failures: number;
}

interface Current {
  readonly file: DayFile;
  handle: FileHandle | undefined;
  size: number;
  /** Never append here again (torn tail, failed write). */
  sealed: boolean;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The audit store; implements the producer's {@link AuditSink}.
 *
 * @example
 * const store = await AuditStore.open({ settings: site.backend.auditStore });
 * if (store.opened.torn) log.warn(store.opened.torn, 'audit file had a torn tail');
 * await store.append(records);   // durable once resolved
 * await store.close();
 */
export class AuditStore implements AuditSink {
  /** What open found: a torn tail (already recorded in the chain), and the chain head. */
  readonly opened: { readonly torn: TornEvent | undefined; readonly head: ChainHead };
  /**
   * The chain head now: the last line's `seq` and hash. Publish it (log,
   * `/metrics`) so that `verify --head` can later prove nothing after an
   * older head was cut or edited.
   */
  get head(): ChainHead {
    return this.chainHead;
  }

  /** Counters since open. */
  readonly stats: AuditStoreStats = {
    records: 0,
    batches: 0,
    bytes: 0,
    fsyncs: 0,
    filesRemoved: 0,
    tornTails: 0,
    failures: 0,
  };

  private chainHead: ChainHead;
  private current: Current | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private pendingSync: Promise<void> | undefined;
  private needsRecovery = false;
  private retentionDue = true;
  private closed = false;
  private readonly now: () => Date;

  private constructor(
    private readonly settings: AuditStoreSettings,
    now: (() => Date) | undefined,
    state: { head: ChainHead; current: Current | undefined; torn: TornEvent | undefined },
  ) {
    this.now = now ?? (() => new Date());
    this.chainHead = state.head;
    this.current = state.current;
    this.opened = { torn: state.torn, head: state.head };
  }

  /**
   * Open the store in `settings.dir` (created if missing): find the chain
   * head and record a torn tail if the last file has one. Retention runs
   * with the first batch and whenever a new file starts.
   *
   * @throws {AuditStoreError} `E_AUDIT_STORE` when the directory or a file cannot be read or written.
   */
  static async open(options: AuditStoreOptions): Promise<AuditStore> {
    const { dir } = options.settings;
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
    } catch (error) {
      throw new AuditStoreError('open', dir, errorText(error), { cause: error });
    }
    const state = await findHead(dir);
    const store = new AuditStore(options.settings, options.now, { ...state, current: state.current });
    if (state.torn !== undefined) store.stats.tornTails += 1;
    try {
      // Write the torn event now, so the fact is on record before any new record.
      await store.enqueue([], state.torn === undefined ? [] : [state.torn]);
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * Append records, in order, as one batch; resolves once they are durable.
   *
   * @throws {AuditStoreError} `E_AUDIT_STORE` when the write or fsync fails (the records are not stored;
   *   the next append first checks the file's tail again).
   */
  async append(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.enqueue(records, []);
    } catch (error) {
      this.stats.failures += 1;
      throw error;
    }
    this.stats.records += records.length;
  }

  /** Flush a pending fsync and close the file. Appends after this throw. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => {});
    await this.closeCurrent();
  }

  private async enqueue(records: readonly StoredRecord[], events: readonly StoredRecord[]): Promise<void> {
    if (this.closed) throw new AuditStoreError('append', this.settings.dir, 'the store is closed');
    const step = this.queue.then(() => this.write(records, events));
    this.queue = step.catch(() => {});
    const { durable } = await step;
    await durable;
  }

  /** One batch: choose the file, chain, write once, then make it durable. */
  private async write(
    records: readonly StoredRecord[],
    events: readonly StoredRecord[],
  ): Promise<{ durable: Promise<void> }> {
    if (this.needsRecovery) await this.recover();
    let batch = [...events, ...records];
    if (batch.length === 0) return { durable: Promise.resolve() };
    const at = this.now();
    let { text, head } = encodeLines(this.chainHead, batch, at);
    const file = this.chooseFile(utcDay(at), Buffer.byteLength(text));
    let removals: RemovedFile[] = [];
    if (this.retentionDue || file !== this.current?.file) {
      this.retentionDue = false;
      // The first batch, or a new file starts: retention is due, its events lead the batch (chained, durable before any removal).
      const retention = await this.planRetention(file.day);
      if (retention.events.length > 0) {
        batch = [...retention.events, ...batch];
        ({ text, head } = encodeLines(this.chainHead, batch, at));
        removals = retention.removed;
      }
    }
    const buffer = Buffer.from(text);
    const current = await this.useFile(file);
    const path = join(this.settings.dir, file.name);
    try {
      let written = 0;
      while (written < buffer.length) {
        const { bytesWritten } = await (current.handle as FileHandle).write(buffer, written);
        written += bytesWritten;
      }
    } catch (error) {
      this.needsRecovery = true;
      throw new AuditStoreError('append', path, errorText(error), { cause: error });
    }
    current.size += buffer.length;
    this.chainHead = head;
    this.stats.batches += 1;
    this.stats.bytes += buffer.length;
    const durable = this.sync(current, path);
    if (removals.length > 0) {
      // The removal is on record (durable) before any file goes.
      await durable;
      await this.remove(removals);
    }
    return { durable };
  }

  /** The file a batch of `bytes` goes to on `day`: the current one, or the next part or day. */
  private chooseFile(day: string, bytes: number): DayFile {
    const current = this.current;
    if (current === undefined) return { name: dayFileName(day, 0), day, part: 0 };
    if (current.file.day !== day) {
      return current.file.day > day
        ? // The clock went back: stay in order, continue the newer day.
          nextPart(current.file)
        : { name: dayFileName(day, 0), day, part: 0 };
    }
    if (current.sealed || (current.size > 0 && current.size + bytes > this.settings.rotateBytes)) {
      return nextPart(current.file);
    }
    return current.file;
  }

  /** Make `file` the current one, creating it (`O_EXCL`: never an existing file) when new. */
  private async useFile(file: DayFile): Promise<Current> {
    if (this.current !== undefined && this.current.file.name === file.name && this.current.handle !== undefined) {
      return this.current;
    }
    const path = join(this.settings.dir, file.name);
    const isCurrent = this.current !== undefined && this.current.file.name === file.name;
    if (!isCurrent) await this.closeCurrent();
    try {
      // The current file after open: append to it; a new file: create it, failing if it exists.
      const handle = await open(path, isCurrent ? 'a' : 'ax', 0o640);
      if (!isCurrent) await syncDir(this.settings.dir);
      this.current = { file, handle, size: isCurrent ? (this.current?.size ?? 0) : 0, sealed: false };
      return this.current;
    } catch (error) {
      this.needsRecovery = true;
      throw new AuditStoreError('open', path, errorText(error), { cause: error });
    }
  }

  private sync(current: Current, path: string): Promise<void> {
    const handle = current.handle as FileHandle;
    const run = async () => {
      try {
        await handle.datasync();
        this.stats.fsyncs += 1;
      } catch (error) {
        this.needsRecovery = true;
        throw new AuditStoreError('fsync', path, errorText(error), { cause: error });
      }
    };
    if (this.settings.fsyncIntervalMs === 0) return run();
    this.pendingSync ??= new Promise<void>((resolve) => setTimeout(resolve, this.settings.fsyncIntervalMs)).then(() => {
      this.pendingSync = undefined;
      return run();
    });
    return this.pendingSync;
  }

  private async closeCurrent(): Promise<void> {
    const current = this.current;
    if (current?.handle === undefined) return;
    const pending = this.pendingSync;
    if (pending !== undefined) await pending.catch(() => {});
    await current.handle.close().catch(() => {});
    current.handle = undefined;
  }

  /** After a failed write: find the head again from the files, recording a torn tail. */
  private async recover(): Promise<void> {
    await this.closeCurrent();
    const state = await findHead(this.settings.dir);
    this.chainHead = state.head;
    this.current = state.current;
    if (state.torn !== undefined) {
      this.stats.tornTails += 1;
      const { text, head } = encodeLines(this.chainHead, [state.torn], this.now());
      const file = this.chooseFile(utcDay(this.now()), text.length);
      const current = await this.useFile(file);
      const path = join(this.settings.dir, file.name);
      try {
        await (current.handle as FileHandle).write(text);
      } catch (error) {
        throw new AuditStoreError('append', path, errorText(error), { cause: error });
      }
      current.size += Buffer.byteLength(text);
      this.chainHead = head;
      await this.sync(current, path);
    }
    this.needsRecovery = false;
  }

  /** Retention due before a new file on `day`: the chained events, and what to remove after. */
  private async planRetention(day: string): Promise<{ events: RetentionEvent[]; removed: RemovedFile[] }> {
    const dir = this.settings.dir;
    const files = await sizedDayFiles(dir);
    const chosen = planRetention(files, day, this.settings);
    const events: RetentionEvent[] = [];
    const removed: RemovedFile[] = [];
    for (const reason of ['age', 'size'] as const) {
      const these: RemovedFile[] = [];
      for (const choice of chosen.filter((c) => c.reason === reason)) {
        const tail = await readTail(join(dir, choice.file.file.name)).catch((error: unknown) => {
          throw new AuditStoreError('retention', join(dir, choice.file.file.name), errorText(error), { cause: error });
        });
        these.push({
          file: choice.file.file.name,
          bytes: choice.file.bytes,
          lastSeq: tail.head?.seq ?? 0,
          lastHash: tail.head?.hash ?? '',
        });
      }
      if (these.length > 0) events.push({ v: 1, kind: 'retention', reason, removed: these });
      removed.push(...these);
    }
    return { events, removed };
  }

  private async remove(files: readonly RemovedFile[]): Promise<void> {
    for (const file of files) {
      const path = join(this.settings.dir, file.file);
      try {
        await unlink(path);
        this.stats.filesRemoved += 1;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new AuditStoreError('retention', path, errorText(error), { cause: error });
        }
      }
    }
    await syncDir(this.settings.dir);
  }
}

function nextPart(file: DayFile): DayFile {
  return { name: dayFileName(file.day, file.part + 1), day: file.day, part: file.part + 1 };
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The day files of `dir` in chain order, with their sizes. */
export async function sizedDayFiles(dir: string): Promise<SizedDayFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new AuditStoreError('read', dir, errorText(error), { cause: error });
  }
  const files: SizedDayFile[] = [];
  for (const file of dayFilesOf(names)) {
    try {
      files.push({ file, bytes: (await stat(join(dir, file.name))).size });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AuditStoreError('read', join(dir, file.name), errorText(error), { cause: error });
      }
    }
  }
  return files;
}

/**
 * Where the chain stands in `dir`: the head after the last valid line, the
 * file to continue, and a torn tail of the last file (which is then sealed).
 */
async function findHead(
  dir: string,
): Promise<{ head: ChainHead; current: Current | undefined; torn: TornEvent | undefined }> {
  const files = await sizedDayFiles(dir);
  let torn: TornEvent | undefined;
  let current: Current | undefined;
  for (let index = files.length - 1; index >= 0; index -= 1) {
    const { file } = files[index] as SizedDayFile;
    const path = join(dir, file.name);
    const tail = await readTail(path).catch((error: unknown) => {
      throw new AuditStoreError('open', path, errorText(error), { cause: error });
    });
    if (index === files.length - 1) {
      if (tail.tornBytes > 0) {
        torn = { v: 1, kind: 'torn', file: file.name, validBytes: tail.validBytes, tornBytes: tail.tornBytes };
      }
      current = { file, handle: undefined, size: tail.validBytes + tail.tornBytes, sealed: tail.tornBytes > 0 };
    }
    if (tail.head !== undefined) return { head: tail.head, current, torn };
  }
  return { head: GENESIS_HEAD, current, torn };
}
