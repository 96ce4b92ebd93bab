/**
 * Stream a day file's lines as bytes, with their line number and offset,
 * without loading the file: the reader under `verify` and `query`.
 * Side effects: reads the file.
 */
import { createReadStream } from 'node:fs';

/** One line of a file. */
export interface FileLine {
  /** The line's bytes, without its newline. */
  readonly bytes: Buffer;
  /** 1-based line number. */
  readonly number: number;
  /** Byte offset of its first byte. */
  readonly offset: number;
  /** False for a last line with no newline (a torn tail). */
  readonly complete: boolean;
}

/**
 * The lines of `path` in order; a last line without a newline comes with
 * `complete: false`.
 *
 * @example
 * for await (const line of readLines('/var/lib/ticrypt-net/audit/audit-2026-12-01.jsonl')) ...
 */
export async function* readLines(path: string, chunkBytes = 1 << 20): AsyncGenerator<FileLine> {
  let carry: Buffer | undefined;
  let number = 0;
  let offset = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: chunkBytes }) as AsyncIterable<Buffer>) {
    let start = 0;
    let nl = chunk.indexOf(0x0a);
    while (nl >= 0) {
      const piece = chunk.subarray(start, nl);
      const bytes = carry === undefined ? piece : Buffer.concat([carry, piece]);
      carry = undefined;
      number += 1;
      yield { bytes, number, offset, complete: true };
      offset += bytes.length + 1;
      start = nl + 1;
      nl = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      carry = carry === undefined ? Buffer.from(rest) : Buffer.concat([carry, rest]);
    }
  }
  if (carry !== undefined && carry.length > 0) {
    yield { bytes: carry, number: number + 1, offset, complete: false };
  }
}
