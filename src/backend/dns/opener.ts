/**
 * What the DNS front has opened in the firewall, and the queue that opens
 * and closes it: every answer's elements are in the kernel before the VM
 * gets the answer; an element still open long enough is not written again;
 * everything asked for while one transaction runs goes into the next one.
 */
import { FirewallUnavailableError } from '../../errors/firewall-unavailable-error.js';
import type { NftElement } from '../nft/elements.js';
import { renderDnsOps, type DnsOp } from '../nft/dns-opens.js';

/** Runs one transaction line (a long-lived `nft -i`, see `NftSession`). */
export type TransactionRunner = (line: string) => Promise<void>;

/** How long an answer keeps its addresses open. */
export interface OpenerOptions {
  readonly run: TransactionRunner;
  /** An answer opens for at least this many seconds, however small its TTL. Default 60. */
  readonly floorSeconds?: number;
  /** Added to the TTL (or the floor): time to connect after the VM's cache expires. Default 60. */
  readonly graceSeconds?: number;
  /** Most ops in one transaction. Default 2,000. */
  readonly maxOps?: number;
  /** The clock, in ms. Default `Date.now`. */
  readonly now?: () => number;
}

/** Why an element is open: the address an answer named, and the names of that answer (queried name first). */
export interface OpenReason {
  readonly address: string;
  readonly names: readonly string[];
}

/** One element the front opened for a NIC. */
export interface OpenRecord extends OpenReason {
  readonly element: NftElement;
  expiresAt: number;
  ready: Promise<void>;
}

interface Batch {
  readonly ops: DnsOp[];
  readonly opened: { nic: string; id: string; record: OpenRecord }[];
  resolve: () => void;
  reject: (error: unknown) => void;
  readonly promise: Promise<void>;
}

/** Counts for /metrics. */
export interface OpenerStats {
  /** Elements written (opened or refreshed). */
  opened: number;
  /** Elements found open long enough: no write. */
  skipped: number;
  /** Elements closed. */
  closed: number;
  /** Transactions run, and failed. */
  transactions: number;
  failures: number;
}

const idOf = (element: NftElement) => `${element.set} ${element.key}`;

/**
 * The ledger of DNS-opened elements per NIC (`network/mac`) and the one
 * queue of transactions that changes them.
 */
export class Opener {
  private readonly ledger = new Map<string, Map<string, OpenRecord>>();
  /** The batch being filled (the last of `pendingBatches`), if any. */
  private queue: Batch | undefined;
  private readonly pendingBatches: Batch[] = [];
  private running = false;
  private scheduled = false;
  /** The table was lost and is not rebuilt yet: nothing it would open would stay open. */
  private suspended = false;
  private readonly now: () => number;
  private readonly floor: number;
  private readonly grace: number;
  readonly stats: OpenerStats = { opened: 0, skipped: 0, closed: 0, transactions: 0, failures: 0 };

  constructor(private readonly options: OpenerOptions) {
    this.now = options.now ?? Date.now;
    this.floor = options.floorSeconds ?? 60;
    this.grace = options.graceSeconds ?? 60;
  }

  /** The timeout an answer with this TTL gives its elements, in seconds. */
  timeoutFor(ttl: number): number {
    return Math.max(ttl, this.floor) + this.grace;
  }

  /**
   * Open `elements` for the NIC `nic`, for {@link timeoutFor}(`ttl`) seconds.
   * The queue is entered at once (synchronously), so a close asked for later
   * runs after it. Resolves when every element is in the kernel; an element
   * already open with at least its TTL and half the grace left is not written.
   * Rejects with {@link FirewallUnavailableError} at once while suspended
   * (see {@link suspend}).
   */
  open(nic: string, elements: readonly NftElement[], ttl: number, reason: OpenReason): Promise<void> {
    if (this.suspended) return Promise.reject(new FirewallUnavailableError());
    const now = this.now();
    const seconds = this.timeoutFor(ttl);
    const enough = (Math.max(ttl, this.floor) + this.grace / 2) * 1000;
    const records = this.records(nic, true);
    const waits: Promise<void>[] = [];
    for (const element of elements) {
      const id = idOf(element);
      const known = records.get(id);
      if (known !== undefined && known.expiresAt - now >= enough) {
        this.stats.skipped += 1;
        waits.push(known.ready);
        continue;
      }
      const batch = this.batch();
      const record: OpenRecord = { ...reason, element, expiresAt: now + seconds * 1000, ready: batch.promise };
      records.set(id, record);
      batch.ops.push({ kind: 'open', element, seconds });
      batch.opened.push({ nic, id, record });
      waits.push(batch.promise);
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** Close everything opened for `nic` (deregistered). */
  close(nic: string): Promise<void> {
    return this.retain(nic, () => false);
  }

  /** Close what `keep` no longer justifies for `nic` (its allow-list changed). */
  retain(nic: string, keep: (record: OpenRecord) => boolean): Promise<void> {
    const records = this.records(nic, false);
    const now = this.now();
    const ops: DnsOp[] = [];
    for (const [id, record] of records) {
      if (record.expiresAt > now && keep(record)) continue;
      records.delete(id);
      if (record.expiresAt > now) ops.push({ kind: 'close', element: record.element });
    }
    if (records.size === 0) this.ledger.delete(nic);
    if (ops.length === 0) return Promise.resolve();
    this.stats.closed += ops.length;
    const batch = this.batch();
    batch.ops.push(...ops);
    return batch.promise;
  }

  /**
   * Forget everything, and open again if suspended: the table was just
   * rebuilt (service start, or the guard's repair), so every `dns_*` set is
   * empty and the next answer must write what it opens. Call only once the
   * rebuild has committed: a record kept from before would skip that write.
   */
  forget(): void {
    this.ledger.clear();
    this.suspended = false;
  }

  /**
   * The table is gone, or no longer as the backend left it (the guard saw it):
   * forget everything and refuse to open until {@link forget}, since the
   * rebuild that follows empties the `dns_*` sets. An answer that would open
   * something fails meanwhile (the front answers SERVFAIL and the VM asks
   * again), rather than reach the VM with elements the rebuild deletes.
   */
  suspend(): void {
    this.ledger.clear();
    this.suspended = true;
  }

  /** Drop records that have expired (the kernel dropped their elements). */
  sweep(): void {
    const now = this.now();
    for (const [nic, records] of this.ledger) {
      for (const [id, record] of records) if (record.expiresAt <= now) records.delete(id);
      if (records.size === 0) this.ledger.delete(nic);
    }
  }

  /** How many elements are open, by the ledger. */
  get size(): number {
    let size = 0;
    for (const records of this.ledger.values()) size += records.size;
    return size;
  }

  private records(nic: string, create: boolean): Map<string, OpenRecord> {
    let records = this.ledger.get(nic);
    if (records === undefined) {
      records = new Map();
      if (create) this.ledger.set(nic, records);
    }
    return records;
  }

  /** The batch being filled: the next transaction. */
  private batch(): Batch {
    if (this.queue !== undefined && this.queue.ops.length < (this.options.maxOps ?? 2000)) return this.queue;
    if (this.queue !== undefined) this.flushSoon(); // full: a fresh one follows it
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // awaited by each open; never an unhandled rejection
    const batch: Batch = { ops: [], opened: [], resolve, reject, promise };
    this.pendingBatches.push(batch);
    this.queue = batch;
    this.flushSoon();
    return batch;
  }

  /** After this turn of the event loop (so the answers read in it share a transaction), unless one runs. */
  private flushSoon(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.running) return;
    const batch = this.pendingBatches.shift();
    if (batch === undefined) return;
    if (this.queue === batch) this.queue = undefined;
    this.running = true;
    try {
      this.stats.transactions += 1;
      await this.options.run(renderDnsOps(batch.ops));
      for (const op of batch.ops) if (op.kind === 'open') this.stats.opened += 1;
      batch.resolve();
    } catch (error) {
      this.stats.failures += 1;
      // What this batch would have opened is not open: forget it, so the next answer tries again.
      for (const { nic, id, record } of batch.opened) {
        const records = this.ledger.get(nic);
        if (records?.get(id) === record) records.delete(id);
      }
      batch.reject(error);
    } finally {
      this.running = false;
      if (this.pendingBatches.length > 0) this.flushSoon();
    }
  }
}
