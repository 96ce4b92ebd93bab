/**
 * `audit verify`: walk the hash chain through the day files of a range of
 * days, streaming, and report the first break with its file and line.
 * A gap before the oldest file is accepted only when a chained `retention`
 * event names the removed file's last line; a torn tail only when the next
 * line is the store's `torn` event for exactly those bytes.
 * Side effects: reads the day files.
 */
import { join } from 'node:path';
import { sizedDayFiles } from './day-store.js';
import { type ChainHead, GENESIS, lineHash, parseLine, type StoredLine } from './line.js';
import { readLines } from './read-lines.js';
import type { RemovedFile, TornEvent } from './store-event.js';
import { readTail } from './tail.js';

/** Where and why the chain breaks. */
export interface ChainBreak {
  /** The file name. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** What was expected and found. */
  readonly detail: string;
}

/** What `verify` saw. */
export interface VerifyReport {
  /** The files walked, in chain order. */
  readonly files: string[];
  /** Valid lines walked. */
  lines: number;
  /** The first and last `seq` walked. */
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  /** How the first line walked is anchored: the genesis, the file before the range, or a recorded removal. */
  anchor: 'genesis' | 'previous-file' | 'retention' | 'none' | 'unverified';
  /** Removals recorded by retention events in the walk. */
  readonly removed: RemovedFile[];
  /** Torn tails found and explained by the store's `torn` events. */
  readonly torn: TornEvent[];
  /** The first break; absent when the chain is whole. */
  break: ChainBreak | undefined;
}

/** A published head: its `seq`, and its line's hash when known (a seq alone proves only that nothing was cut). */
export interface Anchor {
  readonly seq: number;
  readonly hash?: string;
}

/** Which days to verify (`YYYY-MM-DD`, inclusive); absent: from the first or to the last file. */
export interface DayRange {
  readonly sinceDay?: string;
  readonly untilDay?: string;
  /**
   * Heads published earlier (the store's `head`, e.g. from its log or
   * `/metrics`, kept off this machine): the line of each `seq` must hash to
   * `hash`. Without one, the newest lines could be cut or edited unseen: a
   * hash chain proves only what comes before a known line.
   */
  readonly anchors?: readonly Anchor[];
}

interface PendingTorn {
  readonly file: string;
  readonly line: number;
  readonly validBytes: number;
  readonly tornBytes: number;
}

/**
 * Verify the chain of the day files in `dir` over `range`.
 *
 * @example
 * const report = await verifyChain('/var/lib/ticrypt-net/audit', { sinceDay: '2026-11-01' });
 * if (report.break) console.error(report.break.file, report.break.line, report.break.detail);
 */
export async function verifyChain(dir: string, range: DayRange = {}): Promise<VerifyReport> {
  const all = await sizedDayFiles(dir);
  const inRange = (day: string) =>
    (range.sinceDay === undefined || day >= range.sinceDay) && (range.untilDay === undefined || day <= range.untilDay);
  const firstIndex = all.findIndex((f) => inRange(f.file.day));
  const report: VerifyReport = {
    files: [],
    lines: 0,
    firstSeq: undefined,
    lastSeq: undefined,
    anchor: 'none',
    removed: [],
    torn: [],
    break: undefined,
  };
  if (firstIndex < 0) return report;

  let expected: ChainHead | undefined;
  let pendingTorn: PendingTorn | undefined;
  const before = all[firstIndex - 1];
  if (before !== undefined) {
    const tail = await readTail(join(dir, before.file.name));
    expected = tail.head;
    report.anchor = 'previous-file';
    if (tail.tornBytes > 0) {
      pendingTorn = { file: before.file.name, line: 0, validBytes: tail.validBytes, tornBytes: tail.tornBytes };
    }
  }
  let anchor: { file: string; line: StoredLine } | undefined;
  const anchors = new Map((range.anchors ?? []).map((a) => [a.seq, a.hash]));

  const fail = (file: string, line: number, detail: string) => {
    report.break = { file, line, detail };
    if (anchor !== undefined) report.anchor = 'unverified';
    return report;
  };

  let index = firstIndex;
  for (; index < all.length && inRange((all[index] as (typeof all)[number]).file.day); index += 1) {
    const name = (all[index] as (typeof all)[number]).file.name;
    report.files.push(name);
    let tornAt: { line: number; offset: number } | undefined;
    let end = 0;
    for await (const fileLine of readLines(join(dir, name))) {
      end = fileLine.offset + fileLine.bytes.length + (fileLine.complete ? 1 : 0);
      if (tornAt !== undefined) continue;
      const parsed = fileLine.complete ? parseLine(fileLine.bytes.toString('utf8')) : undefined;
      if (parsed === undefined) {
        tornAt = { line: fileLine.number, offset: fileLine.offset };
        continue;
      }
      if (pendingTorn !== undefined) {
        const rec = parsed.rec;
        const explained =
          rec.kind === 'torn' &&
          rec.file === pendingTorn.file &&
          rec.validBytes === pendingTorn.validBytes &&
          rec.tornBytes === pendingTorn.tornBytes;
        if (!explained) {
          return fail(
            pendingTorn.file,
            pendingTorn.line,
            `unreadable line (${pendingTorn.tornBytes} bytes to the end of the file) not recorded as a torn tail`,
          );
        }
        report.torn.push(rec);
        pendingTorn = undefined;
      }
      if (expected === undefined) {
        if (parsed.seq === 1 && parsed.prev === GENESIS) report.anchor = 'genesis';
        else anchor = { file: name, line: parsed };
      } else if (parsed.seq !== expected.seq + 1) {
        return fail(name, fileLine.number, `seq expected ${expected.seq + 1}, found ${parsed.seq}`);
      } else if (parsed.prev !== expected.hash) {
        return fail(name, fileLine.number, `prev expected ${expected.hash}, found ${parsed.prev}`);
      }
      if (parsed.rec.kind === 'retention') report.removed.push(...parsed.rec.removed);
      expected = { seq: parsed.seq, hash: lineHash(fileLine.bytes) };
      const anchored = anchors.get(parsed.seq);
      if (anchored !== undefined && anchored !== expected.hash) {
        // A seq-only anchor maps to undefined and checks nothing here.
        return fail(name, fileLine.number, `seq ${parsed.seq} hashes to ${expected.hash}, published ${anchored}`);
      }
      report.firstSeq ??= parsed.seq;
      report.lastSeq = parsed.seq;
      report.lines += 1;
    }
    if (tornAt !== undefined) {
      pendingTorn = { file: name, line: tornAt.line, validBytes: tornAt.offset, tornBytes: end - tornAt.offset };
    }
  }
  if (pendingTorn !== undefined) {
    return fail(
      pendingTorn.file,
      pendingTorn.line,
      `unreadable line (${pendingTorn.tornBytes} bytes to the end of the file): a torn tail the store has not recorded yet (it records one when it next opens)`,
    );
  }
  const last = all.at(-1)?.file.name ?? '';
  const reachable = range.untilDay === undefined;
  for (const seq of anchors.keys()) {
    if (reachable && (report.lastSeq ?? 0) < seq) {
      return fail(last, 0, `the chain ends at seq ${report.lastSeq ?? 0}, before the published seq ${seq}`);
    }
  }
  if (anchor !== undefined) {
    const { file, line } = anchor;
    const explains = (r: RemovedFile) => r.lastHash === line.prev && r.lastSeq === line.seq - 1;
    let removal = report.removed.find(explains);
    // The retention event may lie past the range: look for it in the later files.
    for (; removal === undefined && index < all.length; index += 1) {
      removal = await findRemoval(join(dir, (all[index] as (typeof all)[number]).file.name), explains);
    }
    if (removal === undefined) {
      return fail(
        file,
        1,
        `the chain starts at seq ${line.seq} after ${line.prev}: no file holds that line and no retention event records its removal`,
      );
    }
    report.anchor = 'retention';
  }
  return report;
}

async function findRemoval(path: string, explains: (r: RemovedFile) => boolean): Promise<RemovedFile | undefined> {
  for await (const fileLine of readLines(path)) {
    if (!fileLine.bytes.includes('"kind":"retention"')) continue;
    const parsed = parseLine(fileLine.bytes.toString('utf8'));
    if (parsed?.rec.kind === 'retention') {
      const found = parsed.rec.removed.find(explains);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
