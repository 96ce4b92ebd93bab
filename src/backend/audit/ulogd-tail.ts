/**
 * The edge that follows a JSON-lines file ulogd appends to: reads what is
 * new in large chunks, hands whole lines on in batches, and persists its
 * offset (with the file's inode) only after the batch was taken, so a
 * restarted service resumes where it stopped: nothing is skipped (a batch
 * taken but not yet persisted is handed on again: at least once).
 *
 * Rotation (`rotateBytes`): once the lines up to that many bytes of the file
 * are taken and the offset persisted, the tail renames the file to
 * `<file>.rotated` and asks the writer to reopen its file (`onRotate`:
 * SIGHUP to ulogd). It keeps reading the renamed file (the same inode) to
 * its end, and switches to the new file, from its start, only once that
 * exists (the writer has reopened, so it writes nothing more to the old
 * one); then it persists the new inode and removes the renamed file. The
 * persisted inode says which of the two files the offset belongs to, so a
 * restart anywhere in between neither skips nor repeats a line.
 */
import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** How to follow one file. */
export interface TailOptions {
  readonly file: string;
  /** Where the offset is kept (`{"ino":…,"offset":…}`). */
  readonly stateFile: string;
  /** Takes one batch of parsed lines; the offset moves past them once it resolves. */
  readonly onBatch: (lines: Record<string, unknown>[]) => Promise<void>;
  /** A line that is not a JSON object (counted, skipped). */
  readonly onMalformed?: (line: string) => void;
  /** Poll interval when caught up, ms (default 100). */
  readonly intervalMs?: number;
  /** Bytes read at most per batch (default 4 MiB). */
  readonly chunk?: number;
  /** Rotate the file once this many of its bytes are taken (default: never). */
  readonly rotateBytes?: number;
  /** Ask the writer to reopen the file (it was renamed); called again, at most each second, until it has. */
  readonly onRotate?: () => Promise<void> | void;
}

/** Where a file being rotated is while its rest is read. */
export const rotatedPath = (file: string) => `${file}.rotated`;

interface Position {
  ino: number;
  offset: number;
}

/** Follows one file until {@link JsonlTail.stop}. */
export class JsonlTail {
  private position: Position = { ino: 0, offset: 0 };
  private running = false;
  private loop: Promise<void> | undefined;
  /** Bytes in the file not yet handed on, at the last look. */
  lagBytes = 0;

  constructor(private readonly options: TailOptions) {}

  /** Load the persisted offset and start following. */
  async start(): Promise<void> {
    const saved = await readFile(this.options.stateFile, 'utf8').catch(() => undefined);
    if (saved !== undefined) {
      const parsed = JSON.parse(saved) as Partial<Position>;
      if (typeof parsed.ino === 'number' && typeof parsed.offset === 'number') {
        this.position = { ino: parsed.ino, offset: parsed.offset };
      }
    }
    this.running = true;
    this.loop = this.run();
  }

  /** Stop after the batch in hand (its offset persisted). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Read until caught up once (for tests and shutdown). */
  async drain(): Promise<void> {
    while (await this.step()) {
      /* next chunk */
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      const more = await this.step().catch(() => false);
      if (!more) await sleep(this.options.intervalMs ?? 100);
    }
  }

  /** One chunk; true when there may be more right away. */
  private async step(): Promise<boolean> {
    // The current file first: once it is a new one, the writer has left the renamed one for good.
    const current = await stat(this.options.file).catch(() => undefined);
    const rotated = await stat(rotatedPath(this.options.file)).catch(() => undefined);
    if (rotated !== undefined && rotated.ino === this.position.ino) return this.finishRotated(rotated, current);
    if (rotated !== undefined && current !== undefined && current.ino === this.position.ino) {
      // Left from a switch persisted just before a stop: its lines are all taken.
      await unlink(rotatedPath(this.options.file)).catch(() => undefined);
    }
    if (current === undefined) return false;
    if (current.ino !== this.position.ino || current.size < this.position.offset) {
      // A new file (rotated or replaced) or a truncated one: from its start.
      this.position = { ino: current.ino, offset: 0 };
    }
    this.lagBytes = current.size - this.position.offset;
    if (this.lagBytes <= 0) return false;
    const read = await this.chunk(this.options.file, current.size);
    if (read.taken === 0) return false; // a partial line: wait for its end
    const rotateBytes = this.options.rotateBytes;
    if (rotateBytes !== undefined && this.position.offset >= rotateBytes) {
      await rename(this.options.file, rotatedPath(this.options.file));
      await this.askReopen(true);
      return true;
    }
    return read.more;
  }

  /** Read the renamed file to its end; once the writer has a new file, take what is left and switch to it. */
  private async finishRotated(
    rotated: { ino: number; size: number },
    current: { ino: number } | undefined,
  ): Promise<boolean> {
    const path = rotatedPath(this.options.file);
    this.lagBytes = rotated.size - this.position.offset;
    if (this.lagBytes > 0) {
      const read = await this.chunk(path, rotated.size);
      if (read.taken > 0) return true;
    }
    if (current === undefined || current.ino === rotated.ino) {
      await this.askReopen(false);
      return false;
    }
    // The writer reopened before `rotated` was looked at: its size is final. A line without its end (never
    // written whole) is malformed.
    if (this.lagBytes > 0) {
      const handle = await open(path, 'r');
      try {
        const rest = Buffer.alloc(this.lagBytes);
        await handle.read(rest, 0, rest.length, this.position.offset);
        this.options.onMalformed?.(rest.toString('utf8'));
      } finally {
        await handle.close();
      }
    }
    await this.persist({ ino: current.ino, offset: 0 });
    this.lastReopen = 0;
    await unlink(path).catch(() => undefined);
    return true;
  }

  private lastReopen = 0;

  private async askReopen(now: boolean): Promise<void> {
    if (!now && Date.now() - this.lastReopen < 1000) return;
    this.lastReopen = Date.now();
    await this.options.onRotate?.();
  }

  /** Hand on the whole lines of `path` from the offset (at most a chunk); bytes taken, and whether more waits. */
  private async chunk(path: string, size: number): Promise<{ taken: number; more: boolean }> {
    const length = Math.min(size - this.position.offset, this.options.chunk ?? 4 * 1024 * 1024);
    const handle = await open(path, 'r');
    let buffer: Buffer;
    try {
      buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.position.offset);
      buffer = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
    const end = buffer.lastIndexOf(0x0a);
    if (end < 0) return { taken: 0, more: false };
    const lines: Record<string, unknown>[] = [];
    let from = 0;
    while (from <= end) {
      const newline = buffer.indexOf(0x0a, from);
      const text = buffer.toString('utf8', from, newline);
      from = newline + 1;
      if (text.length === 0) continue;
      try {
        const value: unknown = JSON.parse(text);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          lines.push(value as Record<string, unknown>);
        } else this.options.onMalformed?.(text);
      } catch {
        this.options.onMalformed?.(text);
      }
    }
    await this.options.onBatch(lines);
    await this.persist({ ino: this.position.ino, offset: this.position.offset + end + 1 });
    this.lagBytes = size - this.position.offset;
    return { taken: end + 1, more: this.lagBytes > 0 };
  }

  private async persist(position: Position): Promise<void> {
    this.position = position;
    const temporary = `${this.options.stateFile}.tmp`;
    await writeFile(temporary, JSON.stringify(this.position));
    await rename(temporary, this.options.stateFile);
  }
}
