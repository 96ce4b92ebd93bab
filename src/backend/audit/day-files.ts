/**
 * The names of the audit day files and their chain order. Pure.
 *
 * A UTC day's records start in `audit-YYYY-MM-DD.jsonl` and continue, past
 * the rotation size or after a torn tail, in `audit-YYYY-MM-DD-1.jsonl`,
 * `-2`, ...; the chain runs through the files in that order, day after day.
 */

/** A day file's name, parsed. */
export interface DayFile {
  /** The file name, no directory. */
  readonly name: string;
  /** Its UTC day, `YYYY-MM-DD`. */
  readonly day: string;
  /** 0 for the day's first file, N for `-N`. */
  readonly part: number;
}

const NAME = /^audit-(\d{4}-\d{2}-\d{2})(?:-([1-9]\d{0,5}))?\.jsonl$/;

/** The UTC day of a time: `YYYY-MM-DD`. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The file name of a day's `part`: `audit-2026-12-01.jsonl`, `audit-2026-12-01-3.jsonl`. */
export function dayFileName(day: string, part: number): string {
  return part === 0 ? `audit-${day}.jsonl` : `audit-${day}-${part}.jsonl`;
}

/** Parse a day file's name; `undefined` for any other file. */
export function parseDayFileName(name: string): DayFile | undefined {
  const match = NAME.exec(name);
  if (match === null) return undefined;
  const day = match[1] as string;
  if (Number.isNaN(Date.parse(`${day}T00:00:00Z`)) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day)
    return undefined;
  return { name, day, part: match[2] === undefined ? 0 : Number(match[2]) };
}

/** Compare two day files in chain order (day, then part). */
export function compareDayFiles(a: DayFile, b: DayFile): number {
  return a.day < b.day ? -1 : a.day > b.day ? 1 : a.part - b.part;
}

/** The day files among directory entries, in chain order; other names are ignored. */
export function dayFilesOf(names: readonly string[]): DayFile[] {
  return names.flatMap((n) => parseDayFileName(n) ?? []).sort(compareDayFiles);
}
