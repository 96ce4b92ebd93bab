/**
 * Parse the times `audit query|verify` take: an ISO 8601 time, or a time
 * relative to now (`90s`, `30m`, `24h`, `7d` ago). Pure.
 */
import { UsageError } from '../../errors/usage-error.js';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const RELATIVE = /^([0-9]{1,6})([smhd])$/;
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * The time `value` names, relative ones counted back from `now`. A date or
 * time without a zone is UTC.
 *
 * @throws {UsageError} `E_USAGE`: `--since: expected an ISO time or a duration like 24h, found "x"`.
 * @example
 * parseTimeArg('--since', '24h', now)  // now minus a day
 * parseTimeArg('--since', '2026-12-01T08:00:00Z', now)
 */
export function parseTimeArg(flag: string, value: string, now: Date): Date {
  const relative = RELATIVE.exec(value);
  if (relative !== null) {
    return new Date(now.getTime() - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]);
  }
  if (ISO.test(value)) {
    const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/.test(value) || value.length === 10 ? value : `${value}Z`;
    const time = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : zoned.replace(' ', 'T'));
    if (!Number.isNaN(time)) return new Date(time);
  }
  throw new UsageError(
    `${flag}: expected an ISO time (2026-12-01T08:00:00Z) or a duration back from now like 90s, 30m, 24h, 7d, found ${JSON.stringify(value)}`,
  );
}
