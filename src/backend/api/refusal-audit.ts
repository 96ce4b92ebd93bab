import type { AuditEvent } from '../service/registry.js';

/** What a refused request is audited with. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly method: string;
  readonly url: string;
  readonly message: string;
  readonly [key: string]: unknown;
}

/** How long rate-limit refusals of one key are folded into one audit line. */
const RATE_LIMIT_WINDOW_MS = 10_000;

/**
 * The audit of refused requests: one line per refusal, except rate-limit
 * refusals (429 `E_RATE_LIMITED`, a flood by definition), of which one line per
 * token or address per 10 s is written, counting the ones folded into it.
 */
export class RefusalAudit {
  private readonly folded = new Map<string, { since: number; count: number }>();

  constructor(
    private readonly audit: (event: AuditEvent) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Audit one refusal of a request from `key` (a token's principal or a client address). */
  refused(key: string, refusal: Refusal): void {
    if (refusal.code !== 'E_RATE_LIMITED') {
      this.audit({ event: 'refused', ...refusal });
      return;
    }
    const now = this.now();
    const window = this.folded.get(key);
    if (window !== undefined && now - window.since < RATE_LIMIT_WINDOW_MS) {
      window.count += 1;
      return;
    }
    const before = window?.count ?? 0;
    this.folded.set(key, { since: now, count: 0 });
    if (this.folded.size > 10_000) this.forgetOld(now);
    this.audit({ event: 'refused', ...refusal, ...(before > 0 ? { alsoRefusedBefore: before } : {}) });
  }

  private forgetOld(now: number): void {
    for (const [key, window] of this.folded) if (now - window.since >= RATE_LIMIT_WINDOW_MS) this.folded.delete(key);
  }
}
