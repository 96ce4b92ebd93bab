/**
 * The edge that follows a JSON-lines file ulogd appends to: reads what is
 * new in large chunks, hands whole lines on in batches, and persists its
 * offset (with the file's inode) only after the batch was taken, so a
 * restarted service resumes where it stopped: nothing is skipped (a batch
 * taken but not yet persisted is handed on again: at least once).
 */
import { open, readFile, rename, stat, writeFile } from 'node:fs/promises';
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
}

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
    const info = await stat(this.options.file).catch(() => undefined);
    if (info === undefined) return false;
    if (info.ino !== this.position.ino || info.size < this.position.offset) {
      // A new file (rotated or replaced) or a truncated one: from its start.
      this.position = { ino: info.ino, offset: 0 };
    }
    this.lagBytes = info.size - this.position.offset;
    if (this.lagBytes <= 0) return false;
    const length = Math.min(this.lagBytes, this.options.chunk ?? 4 * 1024 * 1024);
    const handle = await open(this.options.file, 'r');
    let buffer: Buffer;
    try {
      buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.position.offset);
      buffer = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
    const end = buffer.lastIndexOf(0x0a);
    if (end < 0) return false; // a partial line: wait for its end
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
    this.position = { ino: info.ino, offset: this.position.offset + end + 1 };
    const temporary = `${this.options.stateFile}.tmp`;
    await writeFile(temporary, JSON.stringify(this.position));
    await rename(temporary, this.options.stateFile);
    this.lagBytes = info.size - this.position.offset;
    return end + 1 === length && this.lagBytes > 0;
  }
}
