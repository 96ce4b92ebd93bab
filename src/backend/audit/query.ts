/**
 * `audit query`: stream the records of one VM (or all) over a time range
 * from the day files, without loading a file. Side effects: reads the files.
 *
 * Files are chosen by the day they were written, records by their own
 * times: a record is written when its flow ends, possibly long after it
 * began (or later still, when the reader catches up after a stop), so every
 * file from the day before `since` on is read; a record matches when its
 * `[start, end]` overlaps `[since, until]`.
 */
import { join } from 'node:path';
import { sizedDayFiles } from './day-store.js';
import { dayBefore } from './retention.js';
import { utcDay } from './day-files.js';
import { parseLine, type StoredLine } from './line.js';
import { readLines } from './read-lines.js';

/** What to look for. */
export interface AuditQuery {
  /** Only this VM's records (its uuid); absent: every record, the store's own events included. */
  readonly vm?: string;
  /** Only records that end at or after this time. */
  readonly since?: Date;
  /** Only records that start at or before this time. */
  readonly until?: Date;
}

/** A matching line: where it is and what it says. */
export interface QueryHit {
  readonly file: string;
  readonly line: number;
  /** The line exactly as stored (re-hashable), without its newline. */
  readonly text: string;
  readonly stored: StoredLine;
}

function times(stored: StoredLine): { start: number; end: number } {
  const rec = stored.rec as { start?: unknown; end?: unknown };
  const at = Date.parse(stored.at);
  const start = typeof rec.start === 'string' ? Date.parse(rec.start) : at;
  const end = typeof rec.end === 'string' ? Date.parse(rec.end) : at;
  return { start, end };
}

/**
 * The matching lines of the day files in `dir`, in chain order. Lines that
 * do not parse (a torn tail) are skipped; `verify` is the place that
 * reports them.
 *
 * @example
 * for await (const hit of queryAudit(dir, { vm, since: new Date(Date.now() - 86_400_000) })) ...
 */
export async function* queryAudit(dir: string, query: AuditQuery): AsyncGenerator<QueryHit> {
  const firstDay = query.since === undefined ? undefined : dayBefore(utcDay(query.since), 1);
  const since = query.since?.getTime() ?? -Infinity;
  const until = query.until?.getTime() ?? Infinity;
  const needle = query.vm === undefined ? undefined : Buffer.from(`"uuid":${JSON.stringify(query.vm)}`);
  for (const { file } of await sizedDayFiles(dir)) {
    if (firstDay !== undefined && file.day < firstDay) continue;
    for await (const fileLine of readLines(join(dir, file.name))) {
      // Most lines are some other VM's: skip them before parsing.
      if (needle !== undefined && !fileLine.bytes.includes(needle)) continue;
      if (!fileLine.complete) continue;
      const text = fileLine.bytes.toString('utf8');
      const stored = parseLine(text);
      if (stored === undefined) continue;
      if (query.vm !== undefined && (stored.rec as { vm?: { uuid?: unknown } }).vm?.uuid !== query.vm) continue;
      const { start, end } = times(stored);
      if (end < since || start > until) continue;
      yield { file: file.name, line: fileLine.number, text, stored };
    }
  }
}
