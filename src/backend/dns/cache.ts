/**
 * The front's own cache of upstream answers, by name and type, shared by all
 * VMs (each answer is judged per VM when served): positive answers for their
 * smallest TTL (capped), negative ones for the SOA's negative TTL (capped),
 * concurrent misses for one name sharing one upstream query.
 */
import { LRUCache } from 'lru-cache';
import { RCODES, type DnsRecord, type UpstreamAnswer } from './wire.js';

/** An upstream answer as cached: NOERROR or NXDOMAIN, its A and CNAME records. */
export interface Lookup {
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  /** TTLs as of now (counted down while cached). */
  readonly records: readonly DnsRecord[];
  /** Whether it came from the cache. */
  readonly cached: boolean;
}

/** Where misses go. */
export interface LookupSource {
  query(name: string, type: 'A' | 'CNAME'): Promise<UpstreamAnswer>;
}

/** Cache limits. */
export interface CacheOptions {
  /** Most answers kept. Default 10,000. */
  readonly max?: number;
  /** Longest a positive answer is kept, and the largest TTL handed out, in seconds. Default 300. */
  readonly ttlCap?: number;
  /** Longest a negative answer is kept, in seconds. Default 60. */
  readonly negativeTtlCap?: number;
  /** Most records kept per answer. Default 32. */
  readonly maxRecords?: number;
  /** The clock, in ms (tests). Default `Date.now`. */
  readonly now?: () => number;
}

interface Entry {
  readonly rcode: Lookup['rcode'];
  readonly records: readonly DnsRecord[];
  readonly storedAt: number;
  readonly expiresAt: number;
}

/**
 * Answers from `source`, cached.
 *
 * @example
 * const cache = new ResolverCache(new Upstream({ servers }));
 * const { rcode, records, cached } = await cache.lookup('pypi.org', 'A');
 */
export class ResolverCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly now: () => number;
  readonly ttlCap: number;

  constructor(
    private readonly source: LookupSource,
    private readonly options: CacheOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.ttlCap = options.ttlCap ?? 300;
    this.entries = new LRUCache<string, Entry>({ max: options.max ?? 10_000 });
  }

  /** The answer for `name`/`type`, from the cache or upstream. Rejects when upstream gives none. */
  async lookup(name: string, type: 'A' | 'CNAME'): Promise<Lookup> {
    const key = `${type} ${name}`;
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > this.now()) return this.serve(hit, true);
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = this.fetch(key, name, type).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return this.serve(await pending, false);
  }

  /** How many answers are cached. */
  get size(): number {
    return this.entries.size;
  }

  private async fetch(key: string, name: string, type: 'A' | 'CNAME'): Promise<Entry> {
    const answer = await this.source.query(name, type);
    const cap = (ttl: number) => Math.max(0, Math.min(ttl, this.ttlCap));
    const records = answer.records.slice(0, this.options.maxRecords ?? 32).map((r) => ({ ...r, ttl: cap(r.ttl) }));
    const positive = records.some((r) => r.name === name);
    const life = positive
      ? Math.min(...records.map((r) => r.ttl))
      : Math.min(answer.negativeTtl ?? 5, this.options.negativeTtlCap ?? 60);
    const storedAt = this.now();
    const entry: Entry = {
      rcode: answer.rcode === RCODES.NXDOMAIN ? 'NXDOMAIN' : 'NOERROR',
      records,
      storedAt,
      expiresAt: storedAt + life * 1000,
    };
    if (life > 0) this.entries.set(key, entry);
    else this.entries.delete(key);
    return entry;
  }

  private serve(entry: Entry, cached: boolean): Lookup {
    const age = Math.floor((this.now() - entry.storedAt) / 1000);
    const records = age <= 0 ? entry.records : entry.records.map((r) => ({ ...r, ttl: Math.max(0, r.ttl - age) }));
    return { rcode: entry.rcode, records, cached };
  }
}
