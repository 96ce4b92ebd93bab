/**
 * fsync of a directory, for the spool and the generation ceiling. May not: do
 * anything else.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';

/** fsync a directory, so a file just created or renamed in it survives a power cut. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
