/**
 * Where and how long the backend keeps its audit records: the site's
 * `backend.auditStore` map. Pure: a zod schema and its type, nothing else.
 */
import { z } from 'zod';
import { DEFAULT_AUDIT_DIR } from '../names.js';
import { expect } from './primitives.js';

const MIB = 1024 * 1024;

function integer(min: number, max: number) {
  const error = expect(`an integer ${min}-${max}`);
  return z.number(error).int(error).min(min, error).max(max, error);
}

/**
 * `backend.auditStore`: the day files' directory, rotation, retention and durability.
 *
 * Defaults: `/var/lib/ticrypt-net/audit`, rotate at 256 MiB within a day,
 * keep 400 days and at most 100 GiB in all, fsync every batch.
 *
 * @example
 * backend:
 *   auditStore: { dir: /srv/audit, retainDays: 730, maxTotalBytes: 536870912000 }
 */
export const AuditStoreSchema = z.strictObject(
  {
    /** The directory of the day files (absolute). */
    dir: z
      .string(expect('an absolute path'))
      .refine((v) => v.startsWith('/') && !v.includes('\0'), expect('an absolute path'))
      .default(DEFAULT_AUDIT_DIR),
    /** A day's file is continued in `audit-YYYY-MM-DD-N.jsonl` once it would pass this size. */
    rotateBytes: integer(4096, 2 ** 40).default(256 * MIB),
    /** Whole files whose day is older than this many days are removed. */
    retainDays: integer(1, 36_500).default(400),
    /** Oldest whole files are removed while all files together pass this size. */
    maxTotalBytes: integer(MIB, 2 ** 50).default(100 * 1024 * MIB),
    /**
     * 0: fsync after every batch. More: batches written within this many ms
     * share one fsync (an append still resolves only once it is durable).
     */
    fsyncIntervalMs: integer(0, 10_000).default(0),
  },
  expect('a map with dir, rotateBytes, retainDays, maxTotalBytes and fsyncIntervalMs'),
);

/** The audit store's settings, defaults filled in. */
export type AuditStoreSettings = z.infer<typeof AuditStoreSchema>;

/** The settings with every default: what a site that says nothing gets. */
export const DEFAULT_AUDIT_STORE: AuditStoreSettings = AuditStoreSchema.parse({});
