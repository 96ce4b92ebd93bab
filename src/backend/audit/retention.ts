/**
 * Which whole day files retention removes: the oldest first, by age (day
 * older than `retainDays`) and then by size (while all files pass
 * `maxTotalBytes`), never the file being written. Always a prefix of the
 * chain order, so what remains is one unbroken chain. Pure.
 */
import type { AuditStoreSettings } from '../../site/audit-store.js';
import type { DayFile } from './day-files.js';

/** A day file and its size. */
export interface SizedDayFile {
  readonly file: DayFile;
  readonly bytes: number;
}

/** A file to remove and why. */
export interface RetentionChoice {
  readonly file: SizedDayFile;
  readonly reason: 'age' | 'size';
}

const DAY_MS = 86_400_000;

/** The UTC day `days` before `today` (`YYYY-MM-DD`). */
export function dayBefore(today: string, days: number): string {
  return new Date(Date.parse(`${today}T00:00:00Z`) - days * DAY_MS).toISOString().slice(0, 10);
}

/**
 * Plan retention over `files` (chain order; the last is the one being
 * written and is never chosen) on `today`.
 *
 * @example
 * planRetention(files, '2026-12-01', { retainDays: 400, maxTotalBytes: 100 * 2 ** 30 })
 */
export function planRetention(
  files: readonly SizedDayFile[],
  today: string,
  settings: Pick<AuditStoreSettings, 'retainDays' | 'maxTotalBytes'>,
): RetentionChoice[] {
  const oldestKept = dayBefore(today, settings.retainDays);
  let total = files.reduce((sum, f) => sum + f.bytes, 0);
  const chosen: RetentionChoice[] = [];
  for (const file of files.slice(0, -1)) {
    const reason = file.file.day < oldestKept ? 'age' : total > settings.maxTotalBytes ? 'size' : undefined;
    if (reason === undefined) break;
    chosen.push({ file, reason });
    total -= file.bytes;
  }
  return chosen;
}
