/**
 * The conntrack table's own failure counts, from `/proc/net/stat/nf_conntrack`
 * (the reading process's network namespace; one hexadecimal row per CPU,
 * summed): `drop` (a new flow dropped, e.g. the table full: held end events
 * of a reliable logger that falls behind keep their entries in the table),
 * `early_drop` (an old entry evicted to make room) and `insert_failed`. Where
 * back-pressure from the audit shows as flows refused (fail closed) rather
 * than records lost. Pure but for {@link readConntrackStat}.
 */
import { readFile } from 'node:fs/promises';

/** The counts `ticrypt_audit_conntrack_failures` reports. */
export const CONNTRACK_FAILURES = ['drop', 'early_drop', 'insert_failed'] as const;
/** One of them. */
export type ConntrackFailure = (typeof CONNTRACK_FAILURES)[number];

/**
 * The per-CPU rows of the file summed, for the columns of {@link CONNTRACK_FAILURES}; `undefined` when the text
 * has no such header (another kernel's format).
 *
 * @example parseConntrackStat('entries ... drop early_drop ...\n0000001a ... 00000002 ...\n') // { drop: 2, ... }
 */
export function parseConntrackStat(text: string): Record<ConntrackFailure, number> | undefined {
  const [header, ...rows] = text.trim().split('\n');
  const columns = (header ?? '').trim().split(/\s+/);
  const index = CONNTRACK_FAILURES.map((name) => columns.indexOf(name));
  if (index.some((i) => i < 0)) return undefined;
  const sums = { drop: 0, early_drop: 0, insert_failed: 0 };
  for (const row of rows) {
    const fields = row.trim().split(/\s+/);
    CONNTRACK_FAILURES.forEach((name, k) => {
      const value = Number.parseInt(fields[index[k] ?? -1] ?? '', 16);
      if (Number.isFinite(value)) sums[name] += value;
    });
  }
  return sums;
}

/** This namespace's counts, or `undefined` without conntrack (file absent) or in another format. */
export async function readConntrackStat(path = '/proc/net/stat/nf_conntrack') {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseConntrackStat(text);
}
