/**
 * The hook call's configuration: `hook.yaml` validated only when it changed
 * (the validator is a separate bundle), else the cached result, and the last
 * valid configuration when the file is broken. May not: validate itself (it is
 * handed the validator) or block a VM on a broken file.
 */
import { mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isTicryptNetError } from '../../errors/ticrypt-net-error.js';
import { writeExclusive } from '../agent/safe-write.js';
import type { HookConfig } from '../setup/config-types.js';

/** Bump when {@link HookConfig}'s shape changes, so an old cache is not trusted. */
const CACHE_FORMAT = 2;

/** The configuration a hook run acts on, and where it came from. */
export interface ConfigLoad {
  /** Absent when there is no usable configuration at all: the hook then acts on nothing. */
  readonly config?: HookConfig;
  /** `cache`: the validated file, from cache; `file`: validated now; `last-good`: the file is broken, the last valid one is used. */
  readonly source: 'cache' | 'file' | 'last-good' | 'none';
  /** Why the file itself could not be used (one line). */
  readonly error?: string;
}

interface CacheFile {
  readonly format: number;
  readonly file: string;
  readonly key: string;
  readonly config: HookConfig;
}

/**
 * Load the hook configuration, validating the YAML (yaml + zod: ~40 ms of
 * module loading) only when the file changed since the last run. The
 * validated form is cached as JSON in `cachePath`, keyed by the file's
 * device, inode, size, mtime and ctime. When the file is broken or missing,
 * the last valid configuration is used (and the error reported), so a bad
 * edit neither blocks VMs nor loses deregistrations.
 *
 * @param loadFull validates the file (throws `E_HOOK_CONFIG`); loaded lazily by the caller.
 */
export async function loadConfigCached(
  file: string,
  cachePath: string,
  loadFull: (file: string) => Promise<HookConfig>,
): Promise<ConfigLoad> {
  const cached = readCache(cachePath, file);
  let key: string | undefined;
  try {
    const s = statSync(file);
    key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    key = undefined;
  }
  if (cached && key !== undefined && cached.key === key) return { config: cached.config, source: 'cache' };
  try {
    const config = await loadFull(file);
    if (key !== undefined) writeCache(cachePath, { format: CACHE_FORMAT, file, key, config });
    return { config, source: 'file' };
  } catch (error) {
    const message = isTicryptNetError(error) || error instanceof Error ? error.message : String(error);
    return cached ? { config: cached.config, source: 'last-good', error: message } : { source: 'none', error: message };
  }
}

function readCache(cachePath: string, file: string): CacheFile | undefined {
  try {
    const data = JSON.parse(readFileSync(cachePath, 'utf8')) as Partial<CacheFile>;
    if (data.format !== CACHE_FORMAT || data.file !== file || typeof data.key !== 'string' || !data.config)
      return undefined;
    return data as CacheFile;
  } catch {
    return undefined;
  }
}

function writeCache(cachePath: string, data: CacheFile): void {
  try {
    mkdirSync(dirname(cachePath), { recursive: true, mode: 0o700 });
    const tmp = `${cachePath}.${process.pid}.tmp`;
    writeExclusive(tmp, JSON.stringify(data));
    renameSync(tmp, cachePath);
  } catch {
    // A cache that cannot be written only costs the next run a validation.
  }
}
