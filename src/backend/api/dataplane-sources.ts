/**
 * The real sources of the data-plane metrics: `nft` in the service's own
 * namespace, /proc for conntrack, the store's census. The edge of
 * `dataplane-metrics.ts`; may not change anything it reads.
 */
import { programRunner } from '../../exec/run.js';
import { readConntrackFill } from '../conntrack-fill.js';
import { readCounters } from '../nft/counters.js';
import { CensusQueries } from '../store/census.js';
import type { Store } from '../store/store.js';
import type { DataPlaneSources } from './dataplane-metrics.js';

/** How long one listing of the counters table may take before it is killed (ms); ~40 ms here at any number of VMs. */
const NFT_TIMEOUT_MS = 60_000;

/** The sources a running backend reads: its table's counters, its namespace's conntrack, its store. */
export function liveDataPlaneSources(store: Store): DataPlaneSources {
  const run = programRunner({ timeoutMs: NFT_TIMEOUT_MS });
  const census = new CensusQueries(store.db);
  return {
    counters: () => readCounters(run),
    conntrack: () => readConntrackFill(),
    census: () => census.take(),
  };
}
