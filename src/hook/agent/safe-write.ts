/**
 * Creating the host's files (spool entries, the generation state, the config
 * cache) without following a symlink planted where they are written. Used by
 * the agent and the hook call. May not: write anywhere but the path it is given.
 */
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';

const FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Create `path` for writing without following a symlink planted there: with
 * `O_CREAT | O_EXCL | O_NOFOLLOW`. Whatever is in the way (a leftover from a
 * crashed run, or a symlink) is unlinked first (an unlink removes a symlink
 * itself, never its target), then created again. Returns the descriptor.
 *
 * @throws the `open` error when the file cannot be created.
 */
export function createExclusive(path: string, mode = 0o600): number {
  try {
    return openSync(path, FLAGS, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    unlinkSync(path);
    return openSync(path, FLAGS, mode);
  }
}

/** Write `text` to a new file at `path` created by {@link createExclusive}. */
export function writeExclusive(path: string, text: string, mode = 0o600): void {
  const fd = createExclusive(path, mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
