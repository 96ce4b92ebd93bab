/**
 * The simplest {@link AuditSink}: one JSON line per record appended to a
 * file, each batch written in one `write` and flushed to disk (`fdatasync`)
 * before `append` resolves. (Storage with day files, hash chains and
 * retention is the audit store's.)
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditRecord, AuditSink } from './record.js';

/** Appends records to one JSON-lines file. */
export class JsonlSink implements AuditSink {
  private handle: FileHandle | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  /** Append `records`, durable once it resolves. */
  append(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return this.queue;
    const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    this.queue = this.queue.then(async () => {
      if (this.handle === undefined) {
        await mkdir(dirname(this.file), { recursive: true });
        this.handle = await open(this.file, 'a', 0o640);
      }
      await this.handle.write(text);
      await this.handle.datasync();
    });
    return this.queue;
  }

  /** Close the file. */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.handle?.close();
    this.handle = undefined;
  }
}
