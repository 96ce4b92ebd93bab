/**
 * Render the full table in a worker thread, for large states: the rebuild's
 * garbage (hundreds of thousands of element strings, a script of tens of MB)
 * then lives and dies in the worker's heap, not the service's. A service that
 * stays small spawns `nft` and `conntrack` faster on every later request
 * (fork cost grows with the parent's memory: measured 1.9 ms at 47 MB, 8.8 ms
 * at 582 MB here). The script comes back as bytes, transferred, not copied.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Site } from '../../site/model.js';
import { renderRuleset } from './ruleset.js';
import type { GatewayState, RulesetOptions } from './types.js';

const JOB = 'ticrypt-net/render-ruleset';

interface Job {
  readonly job: typeof JOB;
  readonly site: Site;
  readonly state: GatewayState;
  readonly options: RulesetOptions;
}

/** Below this many registrations the table is rendered in the calling thread (a worker costs ~50 ms to start). */
export const WORKER_THRESHOLD = 2000;

/**
 * The full ruleset as UTF-8 bytes, rendered in a worker thread when the state
 * is large and this module runs compiled (`.js`); in the calling thread otherwise.
 */
export async function renderRulesetBytes(
  site: Site,
  state: GatewayState,
  options: RulesetOptions,
): Promise<Uint8Array> {
  const compiled = import.meta.url.endsWith('.js');
  if (!compiled || state.registrations.length < WORKER_THRESHOLD) {
    return Buffer.from(renderRuleset(site, state, options));
  }
  return new Promise<Uint8Array>((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { job: JOB, site, state, options } satisfies Job,
    });
    worker.once('message', (bytes: Uint8Array) => resolve(bytes));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`nft render worker exited with code ${code}`));
    });
  });
}

// Runs only in the worker this module starts (a host application's own workers carry other data).
if (!isMainThread && parentPort && (workerData as Partial<Job> | undefined)?.job === JOB) {
  const job = workerData as Job;
  const bytes = Buffer.from(renderRuleset(job.site, job.state, job.options));
  // A large Buffer owns its ArrayBuffer, so it can be transferred without a copy.
  parentPort.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
}
