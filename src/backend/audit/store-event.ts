/**
 * The audit store's own records, chained with the producer's so they cannot
 * be dropped unnoticed either: a retention removal (why lines are missing
 * before the oldest file) and a torn tail found at open (why a file ends in
 * half a line). Pure: types only.
 */

/** A whole file retention removed. */
export interface RemovedFile {
  /** Its name, e.g. `audit-2025-10-27.jsonl`. */
  readonly file: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** The `seq` of its last complete line (0 when it had none). */
  readonly lastSeq: number;
  /** The hash of its last complete line: the `prev` of the first line after it. */
  readonly lastHash: string;
}

/** Files removed by retention, and why. */
export interface RetentionEvent {
  readonly v: 1;
  readonly kind: 'retention';
  /** `age` (older than `retainDays`) or `size` (all files past `maxTotalBytes`). */
  readonly reason: 'age' | 'size';
  readonly removed: readonly RemovedFile[];
}

/** A file found at open to end in a torn (incomplete or unreadable) tail; the chain goes on in a new file. */
export interface TornEvent {
  readonly v: 1;
  readonly kind: 'torn';
  /** The file with the torn tail (never written again). */
  readonly file: string;
  /** Bytes of complete, valid lines before the torn tail. */
  readonly validBytes: number;
  /** Bytes of the torn tail. */
  readonly tornBytes: number;
}

/** Any event of the store itself. */
export type StoreEvent = RetentionEvent | TornEvent;

/** The record kinds the store itself writes. */
export const STORE_EVENT_KINDS: ReadonlySet<string> = new Set(['retention', 'torn']);
