/**
 * One stored line of the audit day files, and the hash chain through them.
 * Pure: text in, text out.
 *
 * A line is `{"seq":N,"at":"<ISO ms>","prev":"<sha256 hex>","rec":{...}}`:
 * `seq` counts lines from the first ever written (1), `prev` is the SHA-256
 * of the previous line's bytes (without its newline), the first line ever
 * chains to {@link GENESIS}. Removing, editing, inserting or reordering a
 * line breaks the `prev` of the line after it (or the `seq` order).
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import type { AuditRecord } from './record.js';
import type { StoreEvent } from './store-event.js';

/** The `prev` of the very first line: SHA-256 of `ticrypt-net audit genesis`. */
export const GENESIS = createHash('sha256').update('ticrypt-net audit genesis').digest('hex');

/** What a line carries: a producer's record, or the store's own event (retention, torn tail). */
export type StoredRecord = AuditRecord | StoreEvent;

/** A line, parsed. */
export interface StoredLine {
  /** The line's place in the chain, from 1. */
  readonly seq: number;
  /** When the store wrote it (ISO, milliseconds). */
  readonly at: string;
  /** SHA-256 (hex) of the previous line. */
  readonly prev: string;
  /** The record. */
  readonly rec: StoredRecord;
}

/** Where the chain stands: the last line's `seq` and hash. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** The head before any line: seq 0, {@link GENESIS}. */
export const GENESIS_HEAD: ChainHead = { seq: 0, hash: GENESIS };

/** One-shot hashing (Node >= 20.12): half the cost of a Hash object per line. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string }).hash;

/** SHA-256 (hex) of one line's text, without its newline. */
export function lineHash(text: string | Uint8Array): string {
  return oneShot === undefined ? createHash('sha256').update(text).digest('hex') : oneShot('sha256', text, 'hex');
}

/**
 * Encode records as lines chained after `head`: returns the text (each line
 * ending in `\n`) and the new head.
 *
 * @example
 * const { text, head: next } = encodeLines(GENESIS_HEAD, [record], new Date());
 */
export function encodeLines(
  head: ChainHead,
  records: readonly StoredRecord[],
  at: Date,
): { text: string; head: ChainHead } {
  const when = at.toISOString();
  let { seq, hash } = head;
  let text = '';
  for (const rec of records) {
    seq += 1;
    const line = `{"seq":${seq},"at":"${when}","prev":"${hash}","rec":${JSON.stringify(rec)}}`;
    hash = lineHash(line);
    text += `${line}\n`;
  }
  return { text, head: { seq, hash } };
}

/**
 * Parse one line's text; `undefined` when it is not a stored line (torn,
 * garbage, another format). Checks the frame only, not the record's fields.
 */
export function parseLine(text: string): StoredLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { seq, at, prev, rec } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) return undefined;
  if (typeof at !== 'string' || typeof prev !== 'string' || !/^[0-9a-f]{64}$/.test(prev)) return undefined;
  if (typeof rec !== 'object' || rec === null || typeof (rec as { kind?: unknown }).kind !== 'string') return undefined;
  return { seq: seq as number, at, prev, rec: rec as StoredRecord };
}
