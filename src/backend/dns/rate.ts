/**
 * A query rate per client: a token bucket per source, refilled at `perSecond`
 * up to `burst`. Buckets idle long enough to be full again are dropped.
 */

/** The rate allowed to one client. */
export interface RateLimit {
  /** Sustained queries per second. */
  readonly perSecond: number;
  /** Queries allowed at once after a quiet spell. */
  readonly burst: number;
}

/** The default: 100 queries/s, bursts of 200 (a busy build or browser stays well below). */
export const DEFAULT_RATE: RateLimit = { perSecond: 100, burst: 200 };

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets by client key. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(
    private readonly limit: RateLimit = DEFAULT_RATE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `key` may send one more query now (taking a token if so). */
  take(key: string): boolean {
    const now = this.now();
    this.sweep(now);
    const bucket = this.buckets.get(key) ?? { tokens: this.limit.burst, at: now };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) * this.limit.perSecond) / 1000);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** At most once a minute: drop buckets that have refilled completely. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    const full = (this.limit.burst / this.limit.perSecond) * 1000;
    for (const [key, bucket] of this.buckets) if (now - bucket.at >= full) this.buckets.delete(key);
  }
}
