/**
 * Exact counts of what the refusal rate limit suppressed, from the table's
 * `audit_seen_*` and `audit_logged_*` counters: per network and reason, the
 * increase of seen minus the increase of logged between two reads. Pure but
 * for {@link readTableCounters}, the edge that asks nft.
 */
import { runProgram } from '../../exec/run.js';
import type { Site } from '../../site/model.js';
import { auditedNetworks, REFUSAL_REASONS, refusalCounters } from '../nft/audit.js';
import { TABLE } from '../nft/names.js';
import type { RefusalReason } from './record.js';

/** Packets per named counter of the table. */
export type CounterValues = ReadonlyMap<string, number>;

/** Every named counter of `table inet ticrypt` with its packets (`nft -j list counters table …`); empty when absent. */
export async function readTableCounters(): Promise<Map<string, number>> {
  const [family, table] = TABLE.split(' ') as [string, string];
  const result = await runProgram('nft', ['-j', 'list', 'counters', 'table', family, table]);
  const values = new Map<string, number>();
  if (result.exitCode !== 0) return values;
  const parsed = JSON.parse(result.stdout) as { nftables?: { counter?: { name?: string; packets?: number } }[] };
  for (const item of parsed.nftables ?? []) {
    const counter = item.counter;
    if (typeof counter?.name === 'string' && typeof counter.packets === 'number')
      values.set(counter.name, counter.packets);
  }
  return values;
}

/** One network and reason's suppressed refusals since the last read. */
export interface Suppressed {
  readonly network: string;
  readonly reason: RefusalReason;
  readonly count: number;
  /** Refusals logged (sent to NFLOG) in the same interval. */
  readonly logged: number;
}

/** Turns successive counter reads into suppressed counts; a counter that went down (table rebuilt) counts from 0. */
export class SuppressedCounts {
  private last = new Map<string, number>();

  constructor(private readonly site: Site) {}

  /** The suppressed counts since the previous call (the first call only takes the baseline unless `fromZero`). */
  next(values: CounterValues, fromZero = false): Suppressed[] {
    const first = this.last.size === 0 && !fromZero;
    const out: Suppressed[] = [];
    for (const network of auditedNetworks(this.site)) {
      for (const reason of REFUSAL_REASONS) {
        const names = refusalCounters(reason, network.name);
        const increase = (name: string) => {
          const now = values.get(name) ?? 0;
          const before = this.last.get(name) ?? 0;
          this.last.set(name, now);
          return now >= before ? now - before : now;
        };
        const seen = increase(names.seen);
        const logged = increase(names.logged);
        if (!first && seen > logged) out.push({ network: network.name, reason, count: seen - logged, logged });
      }
    }
    return out;
  }
}
