/**
 * The audit reader's resume point: which source file it reads (path and
 * inode) and the byte offset up to which its records are durably in the
 * store. Saved atomically (temporary file, fsync, rename, fsync of the
 * directory), so a crash leaves either the old or the new cursor, never half.
 * Side effects: reads and writes the cursor file.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { AuditCursorError } from '../../errors/audit-cursor-error.js';

/** Where a reader stopped: the source file and the offset after its last stored record. */
export const ReaderCursor = z.strictObject({
  v: z.literal(1),
  /** The source file (e.g. ulogd2's JSON output). */
  file: z.string().min(1),
  /** Its inode when read: a different inode at the same path means the file was rotated. */
  inode: z.number().int().nonnegative().optional(),
  /** Bytes of `file` whose records are durably stored. */
  offset: z.number().int().nonnegative(),
});
/** Where a reader stopped. */
export type ReaderCursor = z.infer<typeof ReaderCursor>;

/**
 * One reader's cursor file. The reader calls {@link CursorFile.load} at
 * start (`undefined`: start from the source's beginning, or its end, as the
 * reader decides) and {@link CursorFile.save} only after the store's
 * `append` for the records up to `offset` has resolved: a crash between the
 * two re-reads (and re-stores) at most that last batch, it never skips one.
 *
 * @example
 * const cursor = new CursorFile('/var/lib/ticrypt-net/audit-flows.cursor');
 * const at = (await cursor.load()) ?? { v: 1, file: source, offset: 0 };
 * // ... read from at.offset, then:
 * await store.append(records);
 * await cursor.save({ v: 1, file: source, inode, offset: newOffset });
 */
export class CursorFile {
  /** @param path the cursor file (its directory is created on save). */
  constructor(readonly path: string) {}

  /**
   * The saved cursor, or `undefined` when none was saved yet.
   *
   * @throws {AuditCursorError} `E_AUDIT_CURSOR` when the file is unreadable or not a cursor.
   */
  async load(): Promise<ReaderCursor | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AuditCursorError(this.path, `cannot read: ${(error as Error).message}`, { cause: error });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new AuditCursorError(this.path, `expected JSON, found ${JSON.stringify(text.slice(0, 60))}`);
    }
    const parsed = ReaderCursor.safeParse(value);
    if (!parsed.success) {
      throw new AuditCursorError(
        this.path,
        `expected {"v":1,"file","offset","inode"?}, found ${JSON.stringify(value).slice(0, 120)}`,
      );
    }
    return parsed.data;
  }

  /**
   * Replace the cursor atomically and durably.
   *
   * @throws {AuditCursorError} `E_AUDIT_CURSOR` on a bad cursor or a file system error.
   */
  async save(cursor: ReaderCursor): Promise<void> {
    const checked = ReaderCursor.safeParse(cursor);
    if (!checked.success) {
      throw new AuditCursorError(this.path, `refusing to save ${JSON.stringify(cursor)}: not a cursor`);
    }
    const dir = dirname(this.path);
    const temporary = join(dir, `.${basename(this.path)}.${process.pid}.tmp`);
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
      const handle = await open(temporary, 'w', 0o640);
      try {
        await handle.writeFile(`${JSON.stringify(checked.data)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.path);
      const directory = await open(dir, 'r');
      try {
        await directory.sync();
      } finally {
        await directory.close();
      }
    } catch (error) {
      throw new AuditCursorError(this.path, `cannot save: ${(error as Error).message}`, { cause: error });
    }
  }
}
