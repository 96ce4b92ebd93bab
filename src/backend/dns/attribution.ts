/**
 * Which DNS answer admitted a destination, for the flow audit: every answer
 * the front gave a NIC notes, per address it opened, the queried name, the
 * domain entries that opened it, and the window the opening covered (from the
 * answer to the element's expiry). A flow record then names the names whose
 * window held the flow's start and whose entry fits its protocol and port.
 * In memory only, bounded: a window is kept `retainMs` past its end (flows
 * outlive the elements that admitted them), and at most `maxWindows` are kept.
 * For: the DNS front (notes) and the audit (reads). May not: open or close anything.
 */
import type { DomainEntry } from './policy.js';

/** One name whose answer opened an address for a NIC, and what it opened it for. */
export interface DnsAdmission {
  /** The name the VM asked for (the first of its CNAME chain). */
  readonly name: string;
  /** The entries of the VM's allow-list that opened the address for that name (their protocol and ports). */
  readonly entries: readonly DomainEntry[];
}

/** How long notes are kept. */
export interface AttributionOptions {
  /** How long a window is kept after it ended, ms. Default 24 h. */
  readonly retainMs?: number;
  /** Most windows kept; past it, the tenth ending soonest goes. Default 200,000. */
  readonly maxWindows?: number;
  /** The clock, ms. Default `Date.now`. */
  readonly now?: () => number;
}

interface Window {
  from: number;
  until: number;
  entries: readonly DomainEntry[];
}

/** The notes: NIC id → address → name → its latest window. */
export class DnsAttribution {
  private readonly notes = new Map<number, Map<string, Map<string, Window>>>();
  private count = 0;
  private readonly now: () => number;

  constructor(private readonly options: AttributionOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /**
   * An answer for `name` opened `address` for NIC `nicId` through `entries`
   * until `untilMs`. A note of the same name still open is extended; one that
   * had ended is replaced (its older window forgotten).
   */
  note(nicId: number, address: string, name: string, entries: readonly DomainEntry[], untilMs: number): void {
    const now = this.now();
    let byAddress = this.notes.get(nicId);
    if (byAddress === undefined) this.notes.set(nicId, (byAddress = new Map()));
    let byName = byAddress.get(address);
    if (byName === undefined) byAddress.set(address, (byName = new Map()));
    const known = byName.get(name);
    if (known !== undefined && known.until >= now) {
      known.until = Math.max(known.until, untilMs);
      known.entries = entries;
      return;
    }
    if (known === undefined) this.count += 1;
    byName.set(name, { from: now, until: untilMs, entries });
    if (this.count > (this.options.maxWindows ?? 200_000)) this.evictOldest();
  }

  /**
   * The names whose answers held `address` open for NIC `nicId` at `atMs`
   * (the flow's start), in the order noted. Empty when none is known (noted
   * before a restart, or forgotten after `retainMs`).
   */
  admissions(nicId: number, address: string, atMs: number): DnsAdmission[] {
    const byName = this.notes.get(nicId)?.get(address);
    if (byName === undefined) return [];
    const out: DnsAdmission[] = [];
    for (const [name, w] of byName) if (w.from <= atMs && atMs <= w.until) out.push({ name, entries: w.entries });
    return out;
  }

  /**
   * NIC `nicId` went away (its elements were closed), or without an id, the
   * table was rebuilt or lost (every element is gone): those windows end now,
   * so a NIC that gets the id later, or a flow admitted by a later answer, is
   * not credited to them.
   */
  end(nicId?: number): void {
    const now = this.now();
    const nics = nicId === undefined ? [...this.notes.values()] : [this.notes.get(nicId) ?? new Map()];
    for (const byAddress of nics)
      for (const byName of byAddress.values()) for (const w of byName.values()) w.until = Math.min(w.until, now);
  }

  /** How many windows are kept. */
  get size(): number {
    return this.count;
  }

  /** Forget windows that ended more than `retainMs` ago. */
  sweep(): void {
    const horizon = this.now() - (this.options.retainMs ?? 86_400_000);
    this.forget((w) => w.until < horizon);
  }

  /** Forget the tenth of the windows that end first (at least one), in one pass. */
  private evictOldest(): void {
    const ends: number[] = [];
    for (const byAddress of this.notes.values())
      for (const byName of byAddress.values()) for (const w of byName.values()) ends.push(w.until);
    ends.sort((a, b) => a - b);
    const threshold = ends[Math.max(0, Math.floor(ends.length / 10) - 1)] ?? Number.POSITIVE_INFINITY;
    this.forget((w) => w.until <= threshold);
  }

  private forget(drop: (w: Window) => boolean): void {
    for (const [nicId, byAddress] of this.notes) {
      for (const [address, byName] of byAddress) {
        for (const [name, w] of byName) {
          if (!drop(w)) continue;
          byName.delete(name);
          this.count -= 1;
        }
        if (byName.size === 0) byAddress.delete(address);
      }
      if (byAddress.size === 0) this.notes.delete(nicId);
    }
  }
}
