/**
 * Find where a day file's valid lines end: its last complete, parseable line
 * and any torn tail after it (half a line from a crash, or garbage such as
 * the zero bytes some filesystems leave). Reads backwards from the end, so
 * the cost does not grow with the file. Side effects: reads the file.
 */
import { open } from 'node:fs/promises';
import { type ChainHead, lineHash, parseLine } from './line.js';

/** What the end of a day file holds. */
export interface FileTail {
  /** The head after its last valid line; `undefined` when it has none. */
  readonly head: ChainHead | undefined;
  /** Bytes up to and including the last valid line's newline. */
  readonly validBytes: number;
  /** Bytes after that: 0 for a clean file. */
  readonly tornBytes: number;
}

/**
 * Read the tail of `path`.
 *
 * @throws the file system's error (ENOENT, EACCES); the caller wraps it.
 */
export async function readTail(path: string): Promise<FileTail> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size === 0) return { head: undefined, validBytes: 0, tornBytes: 0 };
    for (let window = 64 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      let end = buffer.lastIndexOf(0x0a);
      while (end >= 0) {
        const before = end === 0 ? -1 : buffer.lastIndexOf(0x0a, end - 1);
        // The line may begin before this window: read a larger one.
        if (before < 0 && start > 0) break;
        const bytes = buffer.subarray(before + 1, end);
        const line = parseLine(bytes.toString('utf8'));
        if (line !== undefined) {
          const validBytes = start + end + 1;
          return { head: { seq: line.seq, hash: lineHash(bytes) }, validBytes, tornBytes: size - validBytes };
        }
        end = before;
      }
      if (start === 0 && end < 0) return { head: undefined, validBytes: 0, tornBytes: size };
    }
  } finally {
    await handle.close();
  }
}
