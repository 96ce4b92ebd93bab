/**
 * Where this package's own files are, wherever it is installed (a checkout, a
 * global npm install): the hooks, the systemd units, the hook's bundle.
 *
 * For: `hook install` and `backend apply`. May not: read or write anything.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This package's root: one level above `src/` or `dist/`. */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

/** A file of the package's `systemd/` directory, e.g. `ticrypt-net-backend.service`. */
export function packageUnit(name: string, root: string = packageRoot()): string {
  return join(root, 'systemd', name);
}
