/**
 * What a `/metrics` scrape costs with the data-plane metrics, at 0, 1,000 and
 * VMS registered VMs (20 allow entries each, 50 hosts): the real table inet
 * ticrypt and its counters table (full ruleset, every element) in a
 * throwaway network namespace, a real SQLite store, and the backend's
 * registry (Metrics plus DataPlaneMetrics with the live sources: `nft -j list
 * table inet ticrypt_counters` in the namespace, /proc conntrack, the store
 * census). Prints per phase the first scrape (it waits for a reading), the
 * later scrapes (served from the snapshot while every scrape starts a
 * background reading, cache time 0), how many readings they saw, the longest
 * the event loop was held meanwhile, and the parts alone: the counters read
 * now, the read before (`nft -j list counters table inet ticrypt`, which
 * makes nft fetch every set element), the census; then each read's ratio
 * at 1,000 and VMS over 0, and before over now. Needs root; ~3 min.
 *
 *     node --import tsx bench/metrics.ts [VMS=10000] [SAMPLES=50]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { DataPlaneMetrics } from '../src/backend/api/dataplane-metrics.js';
import { Metrics } from '../src/backend/api/metrics.js';
import { readConntrackFill } from '../src/backend/conntrack-fill.js';
import { nftRunner } from '../src/backend/nft/apply.js';
import { readCounters } from '../src/backend/nft/counters.js';
import { renderRuleset } from '../src/backend/nft/ruleset.js';
import { CensusQueries } from '../src/backend/store/census.js';
import { openStore } from '../src/backend/store/store.js';
import { programRunner } from '../src/exec/run.js';
import { findNetwork } from '../src/site/lookup.js';
import { defaultSite } from '../src/site/parse.js';
import { seedVms } from './fixtures.js';

const args = process.argv.slice(2);
const VMS = Number(args[0] ?? 10_000);
const SAMPLES = Number(args[1] ?? 50);
/** The counters table's listing: milliseconds at any scale. */
const NFT_SAMPLES = 10;
/** The listing before (every set element fetched) takes seconds at 10k VMs: a few samples. */
const BEFORE_SAMPLES = 3;
const site = defaultSite();
const secure = findNetwork(site, 'secure');

const percentile = (values: readonly number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const ms = (v: number) => `${v.toFixed(1)} ms`;

interface Phase {
  vms: number;
  /** The first scrape, which waits for one reading of every source. */
  first: number;
  /** Later scrapes, served from the snapshot while readings run in the background. */
  served: number[];
  refreshes: number;
  nft: number[];
  /** `nft -j list counters table inet ticrypt`: how the counters were read before they had a table of their own. */
  before: number[];
  census: number[];
  blockedMaxMs: number;
  bytes: number;
}

async function phase(netns: string, dir: string, vms: number): Promise<Phase> {
  const store = openStore(join(dir, `store-${vms}.db`));
  try {
    store.transaction(() => seedVms(store, secure, vms));
    const state = { registrations: store.registrations.list(), allowLists: store.allowLists.list() };
    await nftRunner({ netns, timeout: 600_000 })(renderRuleset(site, state));
    const run = programRunner({ netns, timeoutMs: 120_000 });
    const census = new CensusQueries(store.db);
    const sources = {
      counters: () => readCounters(run),
      conntrack: () => readConntrackFill(),
      census: () => census.take(),
    };
    const measure = (cacheMs: number) => {
      const metrics = new Metrics();
      for (const [network, count] of store.registrations.countByNetwork()) {
        metrics.registrations.set({ network }, count);
      }
      const dataPlane = new DataPlaneMetrics(metrics.registry, site, sources, { cacheMs });
      return { metrics, dataPlane };
    };
    const result: Phase = {
      vms,
      first: 0,
      served: [],
      nft: [],
      before: [],
      census: [],
      blockedMaxMs: 0,
      bytes: 0,
      refreshes: 0,
    };
    // cacheMs 0: every scrape finds the snapshot stale and starts a background reading (one at a time).
    const { metrics, dataPlane } = measure(0);
    let started = performance.now();
    await metrics.render();
    result.first = performance.now() - started;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    let last = 0;
    for (let i = 0; i < SAMPLES; i += 1) {
      started = performance.now();
      const text = await metrics.render();
      result.served.push(performance.now() - started);
      result.bytes = text.length;
      const taken = Number(/^ticrypt_dataplane_read_seconds (\S+)$/m.exec(text)?.[1] ?? 0);
      if (taken !== last) result.refreshes += 1;
      last = taken;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    loop.disable();
    result.blockedMaxMs = loop.max / 1e6;
    await dataPlane.read();
    for (let i = 0; i < NFT_SAMPLES; i += 1) {
      started = performance.now();
      await readCounters(run);
      result.nft.push(performance.now() - started);
    }
    for (let i = 0; i < BEFORE_SAMPLES; i += 1) {
      started = performance.now();
      await run('nft', ['-j', 'list', 'counters', 'table', 'inet', 'ticrypt']);
      result.before.push(performance.now() - started);
    }
    for (let i = 0; i < SAMPLES; i += 1) {
      started = performance.now();
      census.take();
      result.census.push(performance.now() - started);
    }
    return result;
  } finally {
    store.close();
  }
}

function report(p: Phase): void {
  const line = (what: string, values: number[]) =>
    `  ${what.padEnd(44)} p50 ${ms(percentile(values, 50)).padStart(10)}  p99 ${ms(percentile(values, 99)).padStart(10)}`;
  console.log(`${p.vms} registered VMs (${SAMPLES} scrapes, exposition ${(p.bytes / 1024).toFixed(1)} KiB):`);
  console.log(`  ${'first scrape (waits for every source)'.padEnd(44)} ${ms(p.first)}`);
  console.log(line('scrape served from the snapshot', p.served));
  console.log(`  ${'background readings done during them'.padEnd(44)} ${p.refreshes}`);
  console.log(line(`counters read now: list table (${NFT_SAMPLES} runs)`, p.nft));
  console.log(line(`before: list counters table (${BEFORE_SAMPLES} runs)`, p.before));
  console.log(line('store census alone (synchronous)', p.census));
  console.log(`  ${'event loop held at most during the scrapes'.padEnd(44)} ${ms(p.blockedMaxMs)}`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/metrics.ts needs root (a network namespace and nft)');
    process.exitCode = 1;
    return;
  }
  const netns = `b${randomBytes(2).toString('hex')}-metrics`;
  const dir = await mkdtemp(join(tmpdir(), 'bench-metrics-'));
  await execa('ip', ['netns', 'add', netns]);
  const cleanup = async () => {
    await execa('ip', ['netns', 'del', netns], { reject: false });
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const phases: Phase[] = [];
    for (const vms of [...new Set([0, Math.min(1000, VMS), VMS])]) {
      phases.push(await phase(netns, dir, vms));
      report(phases.at(-1)!);
    }
    const ratio = (a: number[], b: number[]) => (percentile(a, 50) / Math.max(percentile(b, 50), 0.001)).toFixed(2);
    const at0 = phases[0]!;
    for (const p of phases.slice(1)) {
      console.log(
        `ratio p50 @${p.vms} / @0: served scrape ${ratio(p.served, at0.served)}, counters read now ${ratio(p.nft, at0.nft)}, before ${ratio(p.before, at0.before)}`,
      );
    }
    for (const p of phases) {
      console.log(
        `@${p.vms}: counters read before ${ms(percentile(p.before, 50))} / now ${ms(percentile(p.nft, 50))} = ${ratio(p.before, p.nft)}x`,
      );
    }
  } finally {
    await cleanup();
  }
}

await main();
