/**
 * Register/deregister latency through the REAL backend service's HTTP API
 * (`ticrypt-net backend serve`: fastify, SQLite store, nftables, conntrack,
 * dnsmasq) at 0 and at VMS registered VMs with 20 allow entries each, the
 * p50 ratio against the goals (ratio <= 1.5, p50 <= 20 ms), the full rebuild
 * at start, and where the time goes. Needs root; runs in a throwaway network
 * namespace; about 90 s at the defaults on 2 cores.
 *
 *     node --import tsx bench/backend.ts [VMS=10000] [SAMPLES=200] [--dist] [--cpu-prof]
 *
 * `--dist` runs the built service (dist/cli/main.js, `npm run build` first)
 * instead of src/ through tsx; `--cpu-prof` writes the service's CPU profiles
 * (phase at VMS) to a directory it prints and keeps.
 *
 * Per phase (0 VMs, then VMS): a store is written directly (VMs registered,
 * addresses allocated, allow-lists of the VMs and of the sample VMs set), the
 * service is started on it with a fresh state dir (spawn to 'listening' is the
 * rebuild figure), left to settle (until the namespace's processes use less
 * than 5 % of a core over a second, at most 30 s: at 10k VMs, dnsmasq reading
 * 10,000 host entries and `nft monitor` fetching the ruleset run for seconds
 * after 'listening'), and SAMPLES register+deregister pairs of fresh VMs are
 * timed end to end, one call at a time; after each call /metrics is scraped
 * (untimed) so the time inside fastify and inside the enforcer is known per
 * call. Then, at VMS: a restart with the host entries in place, and each part
 * (nft, conntrack, host entry file, SQLite commit, the rebuild's steps) alone.
 *
 * The script re-executes itself inside the namespace (`ip netns exec`), so its
 * HTTP client reaches the service on the namespace's loopback. The namespace
 * gets each network's gateway interface (a veth) with its gateway address, so
 * every dnsmasq binds as in production. Everything it made is removed at the
 * end, also on error or SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { HostsDir } from '../src/backend/dnsmasq/hosts-dir.js';
import { renderChange, renderCleanup, renderRevoke } from '../src/backend/nft/delta.js';
import { nicElements } from '../src/backend/nft/elements.js';
import { nftRunner } from '../src/backend/nft/apply.js';
import { openStore } from '../src/backend/store/store.js';
import { renderRuleset } from '../src/backend/nft/ruleset.js';
import type { AllowList, Registration } from '../src/protocol/api.js';
import type { Network } from '../src/site/model.js';
import { defaultSite } from '../src/site/parse.js';
import { entries, seedVms, vm } from './fixtures.js';

const NETNS_ENV = 'TICRYPT_BENCH_NETNS';
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const VMS = Number(args[0] ?? 10_000);
const SAMPLES = Number(args[1] ?? 200);
const DIST = process.argv.includes('--dist');
const CPU_PROF = process.argv.includes('--cpu-prof');
const WARMUP = 5;
/** Component micro-measurements (nft, conntrack, host entry, SQLite) per kind. */
const COMPONENT_SAMPLES = 50;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const site = defaultSite();
const secure = site.networks.find((n) => n.name === 'secure') as Network;
const HOST = 'kvm-bench';
if (!Number.isInteger(VMS) || VMS < 0 || VMS > 1_000_000 || !Number.isInteger(SAMPLES) || SAMPLES < 1) {
  throw new Error(`usage: bench/backend.ts [VMS 0-1000000] [SAMPLES >= 1], found ${args.join(' ')}`);
}

/** Sample VMs are numbered from here; the populated ones from 0. */
const SAMPLE_BASE = 1_000_000;
const sampleCount = WARMUP + SAMPLES;

/**
 * The site the service runs with: the presets, with API rate limits and
 * host expiry out of the way of a benchmark that calls as fast as it can.
 */
const SITE_FILE = {
  backend: {
    api: { requestsPerMinute: 1_000_000, unauthenticatedPerMinute: 1_000_000 },
    registrations: { expireAfter: '1d', expireGrace: '1d' },
  },
};

/**
 * Write a store: a host token, a metrics token, `vms` registered VMs
 * (addresses allocated, NIC ids given, allow-lists set) and the sample VMs'
 * allow-lists and placements on the benchmark's host (not registered), in
 * one transaction. Returns the tokens.
 */
function seedStore(path: string, vms: number): { host: string; metrics: string } {
  const store = openStore(path);
  try {
    const host = store.tokens.issue({ name: HOST, role: 'host' });
    const metrics = store.tokens.issue({ name: 'bench-metrics', role: 'metrics' });
    store.transaction(() => {
      seedVms(store, secure, vms);
      for (let i = 0; i < sampleCount; i += 1) {
        store.allowLists.set(vm(SAMPLE_BASE + i).vmUuid, entries(SAMPLE_BASE + i));
        store.placements.set(vm(SAMPLE_BASE + i).vmUuid, [HOST]);
      }
    });
    return { host, metrics };
  } finally {
    store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
const p50 = (values: readonly number[]) => percentile(values, 50);
const p99 = (values: readonly number[]) => percentile(values, 99);
const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : 'n/a');
const now = () => Number(process.hrtime.bigint()) / 1e6;

async function timed(run: () => Promise<unknown> | unknown): Promise<number> {
  const start = now();
  await run();
  return now() - start;
}

/**
 * Wait until the processes of this namespace other than this one (the
 * service and its children) use less than 50 ms of CPU in a second, at most
 * 30 s; returns how long that took.
 */
async function settle(): Promise<number> {
  const netns = process.env[NETNS_ENV];
  const started = now();
  if (netns === undefined) return 0;
  const cpu = async () => {
    const { stdout } = await execa('ip', ['netns', 'pids', netns], { reject: false });
    const pids = String(stdout)
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
    let total = 0;
    for (const pid of pids) total += (await cpuMs(pid)) || 0;
    return total;
  };
  let before = await cpu();
  while (now() - started < 30_000) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await cpu();
    if (after - before < 50) break;
    before = after;
  }
  return now() - started;
}

/** CPU time (user + system) of a process so far, in ms, from /proc (100 ticks per second). */
async function cpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

// ---------------------------------------------------------------------------------------------
// The service

interface Service {
  readonly child: ChildProcess;
  /** How many log lines the service has written so far. */
  readonly lines: () => number;
  readonly url: string;
  /** Spawn to 'listening', ms. */
  readonly startMs: number;
  /** What the service logged for its rebuild from the store. */
  readonly rebuildMs: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Start `backend serve` on the namespace's loopback and wait until it listens. */
async function startService(store: string, stateDir: string, profileDir?: string): Promise<Service> {
  const entry = DIST ? [join(ROOT, 'dist/cli/main.js')] : ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const siteFile = join(dirname(store), 'site.json');
  await writeFile(siteFile, JSON.stringify(SITE_FILE));
  const argv = [...profile, ...entry, 'backend', 'serve', '--insecure-http', '--listen', '127.0.0.1:0'];
  const started = now();
  const child = spawn(process.execPath, [...argv, '--site', siteFile, '--store', store, '--state-dir', stateDir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => running.delete(child));
  const tail: string[] = [];
  let lines = 0;
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', keep);
  const ready = new Promise<{ url: string; rebuildMs: number }>((resolve, reject) => {
    let rebuildMs = Number.NaN;
    let listening = false;
    let partial = '';
    // The service logs to stdout, which must be drained (its writes are synchronous) but cheaply: after
    // 'listening' only count lines, so this process adds no work per line to the timings.
    const stdout = child.stdout as NodeJS.ReadableStream;
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      for (let at = chunk.indexOf('\n'); at !== -1; at = chunk.indexOf('\n', at + 1)) lines += 1;
      if (listening) return;
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        keep(line);
        if (!line.includes('"msg":"rebuilt firewall') && !line.includes('"msg":"listening"')) continue;
        const record = JSON.parse(line) as { msg?: string; ms?: number; url?: string };
        if (record.msg === 'rebuilt firewall and dnsmasq from the store') rebuildMs = record.ms ?? Number.NaN;
        if (record.msg === 'listening' && record.url) {
          listening = true;
          resolve({ url: record.url, rebuildMs });
        }
      }
    });
    void exited.then(() => reject(new Error(`the service exited before listening:\n${tail.join('\n')}`)));
  });
  const deadline = setTimeout(() => child.kill('SIGKILL'), 240_000);
  const { url, rebuildMs } = await ready.finally(() => clearTimeout(deadline));
  return {
    child,
    lines: () => lines,
    url,
    startMs: now() - started,
    rebuildMs,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function call(url: string, token: string, body: unknown): Promise<{ status: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { status: string };
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Cumulative `_sum` values of the two histograms the breakdown needs, from `GET /metrics`. */
async function scrape(url: string, token: string): Promise<{ register: number; deregister: number; enforce: number }> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  const sum = (name: string, label: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}_sum{`) && line.includes(label))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0) * 1000;
  return {
    register: sum('ticrypt_api_request_seconds', 'route="/v1/register"'),
    deregister: sum('ticrypt_api_request_seconds', 'route="/v1/deregister"'),
    enforce: sum('ticrypt_enforce_seconds', 'kind="change"'),
  };
}

/** Per call: end to end at the client, inside fastify (request to response), inside the enforcer. */
interface Calls {
  client: number[];
  server: number[];
  enforce: number[];
}

interface PhaseResult {
  readonly vms: number;
  readonly startMs: number;
  readonly rebuildMs: number;
  readonly register: Calls;
  readonly deregister: Calls;
  /** CPU per register+deregister pair, ms. */
  readonly serviceCpu: number;
  readonly dnsmasqCpu: number;
  /** The service's resident memory after the samples, MB (every fork for nft or conntrack copies its page tables). */
  readonly rssMb: number;
  /** Log lines the service wrote per register+deregister pair (it relays every dnsmasq line). */
  readonly logLines: number;
}

/**
 * Seed a store with `vms` VMs, start the service (cold state dir), then time
 * WARMUP + SAMPLES register/deregister pairs of fresh VMs, sequentially,
 * scraping /metrics after each call (outside the timed window) so the
 * service's own time and the enforcer's time are known per call.
 */
async function phase(dir: string, vms: number, profileDir?: string): Promise<PhaseResult> {
  const store = join(dir, 'backend.db');
  const stateDir = join(dir, 'state');
  await mkdir(dir, { recursive: true });
  const seeded = now();
  const tokens = seedStore(store, vms);
  process.stderr.write(`  seeded store with ${vms} VMs in ${(now() - seeded).toFixed(0)} ms; starting the service\n`);
  const service = await startService(store, stateDir, profileDir);
  const settledMs = await settle();
  process.stderr.write(
    `  listening after ${service.startMs.toFixed(0)} ms, settled ${settledMs.toFixed(0)} ms later; ${sampleCount} register+deregister pairs\n`,
  );
  try {
    const register: Calls = { client: [], server: [], enforce: [] };
    const deregister: Calls = { client: [], server: [], enforce: [] };
    const dnsmasqPid = Number((await readFile(join(stateDir, 'dnsmasq/secure/dnsmasq.pid'), 'utf8')).trim());
    let cpu = { service: 0, dnsmasq: 0 };
    let lines = 0;
    let before = await scrape(service.url, tokens.metrics);
    for (let i = 0; i < sampleCount; i += 1) {
      if (i === WARMUP) {
        cpu = { service: await cpuMs(service.child.pid), dnsmasq: await cpuMs(dnsmasqPid) };
        lines = service.lines();
      }
      const nic = { ...vm(SAMPLE_BASE + i), network: 'secure' };
      const kinds = [
        ['register', register, `${service.url}/v1/register`, { ...nic, generation: 1 }, 'registered'],
        [
          'deregister',
          deregister,
          `${service.url}/v1/deregister`,
          { mac: nic.mac, network: 'secure', generation: 1 },
          'removed',
        ],
      ] as const;
      for (const [kind, calls, url, body, expected] of kinds) {
        let answer: { status: string } = { status: '' };
        const client = await timed(async () => (answer = await call(url, tokens.host, body)));
        if (answer.status !== expected) throw new Error(`${url}: expected status ${expected}, found ${answer.status}`);
        const after = await scrape(service.url, tokens.metrics);
        if (i >= WARMUP) {
          calls.client.push(client);
          calls.server.push(after[kind] - before[kind]);
          calls.enforce.push(after.enforce - before.enforce);
        }
        before = after;
      }
    }
    const serviceCpu = ((await cpuMs(service.child.pid)) - cpu.service) / SAMPLES;
    const dnsmasqCpu = ((await cpuMs(dnsmasqPid)) - cpu.dnsmasq) / SAMPLES;
    const status = await readFile(`/proc/${service.child.pid}/status`, 'utf8').catch(() => '');
    const rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
    return {
      vms,
      startMs: service.startMs,
      rebuildMs: service.rebuildMs,
      register,
      deregister,
      serviceCpu,
      dnsmasqCpu,
      rssMb,
      logLines: (service.lines() - lines) / SAMPLES,
    };
  } finally {
    await service.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Components alone, at VMS (the service stopped; the table it built stays in the kernel)

interface Components {
  nftAdd: number[];
  nftDelete: number[];
  nftRevoke: number[];
  nftCleanup: number[];
  hostPut: number[];
  hostRemove: number[];
  sqliteFull: number[];
  sqliteNormal: number[];
  /** The steps of the service's rebuild, each timed once, ms. */
  rebuild: { read: number; render: number; scriptBytes: number; apply: number; hostsCold: number; hostsWarm: number };
}

/** The service's rebuild, step by step: store read, render, nft -f, host entries (cold, then unchanged). */
async function rebuildParts(dir: string): Promise<Components['rebuild']> {
  const store = openStore(join(dir, 'backend.db'));
  let state: { registrations: Registration[]; allowLists: AllowList[] } = { registrations: [], allowLists: [] };
  let script = '';
  try {
    const read = await timed(() => {
      state = { registrations: store.registrations.list(), allowLists: store.allowLists.list() };
    });
    const render = await timed(() => (script = renderRuleset(site, state)));
    const apply = await timed(() => nftRunner({ timeout: 600_000 })(script));
    const hosts = new HostsDir(join(dir, 'hosts-again'), { network: secure, reload: () => undefined });
    const hostsCold = await timed(() => hosts.sync(state.registrations));
    const hostsWarm = await timed(() => hosts.sync(state.registrations));
    return { read, render, scriptBytes: script.length, apply, hostsCold, hostsWarm };
  } finally {
    store.close();
  }
}

async function components(dir: string): Promise<Components> {
  const result: Components = {
    nftAdd: [],
    nftDelete: [],
    nftRevoke: [],
    nftCleanup: [],
    hostPut: [],
    hostRemove: [],
    sqliteFull: [],
    sqliteNormal: [],
    rebuild: await rebuildParts(dir),
  };
  const nft = nftRunner();
  const hosts = new HostsDir(join(dir, 'state/dnsmasq/secure/hosts'), { network: secure, reload: () => undefined });
  const store = openStore(join(dir, 'backend.db'));
  try {
    for (let i = 0; i < COMPONENT_SAMPLES; i += 1) {
      const n = 2_000_000 + i;
      const registration: Registration = {
        ...vm(n),
        hostId: HOST,
        network: 'secure',
        ip: `192.168.${200 + (i >> 8)}.${(i & 255) + 1}`,
        generation: 1,
        nicId: 0xf00000 + i,
      };
      const nic = { registration, entries: entries(n) };
      result.nftAdd.push(await timed(() => nft(renderChange({ site }, [], [nic]))));
      result.nftDelete.push(await timed(() => nft(renderChange({ site }, [nic], []))));
      await nft(renderChange({ site }, [], [nic]));
      result.nftRevoke.push(await timed(() => nft(renderRevoke(site, [nic]))));
      result.nftCleanup.push(await timed(() => nft(renderCleanup(site, [nic]))));
      result.hostPut.push(await timed(() => hosts.put(registration)));
      result.hostRemove.push(await timed(() => hosts.remove(registration.mac)));
      for (const [mode, into] of [
        ['FULL', result.sqliteFull],
        ['NORMAL', result.sqliteNormal],
      ] as const) {
        store.db.pragma(`synchronous = ${mode}`);
        const mac = vm(n + (mode === 'FULL' ? 0 : 100_000)).mac;
        // What a register and a deregister write: allocate + put, delete; one BEGIN IMMEDIATE ... COMMIT each.
        into.push(
          (await timed(() => {
            store.db.exec('BEGIN IMMEDIATE');
            const ip = store.addresses.allocate(secure, mac);
            store.registrations.put({ ...registration, mac, ip });
            store.db.exec('COMMIT');
          })) +
            (await timed(() => {
              store.db.exec('BEGIN IMMEDIATE');
              store.registrations.delete('secure', mac);
              store.db.exec('COMMIT');
            })),
        );
      }
    }
  } finally {
    store.close();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

function report(at0: PhaseResult, atN: PhaseResult, warmStartMs: number, parts: Components): void {
  const perVm = nicElements(
    site,
    { ...vm(0), hostId: HOST, network: 'secure', ip: '192.168.129.9', generation: 1, nicId: 1 },
    entries(0),
  ).length;
  const runner = DIST ? 'dist/' : 'src/ via tsx';
  console.log(
    `\nbackend service over HTTP (${runner}): ${VMS} VMs x 20 allow entries (${perVm} nft elements per VM), ` +
      `${SAMPLES} sequential register+deregister pairs of fresh VMs (after ${WARMUP} warm-up pairs), client in the namespace\n`,
  );
  const pad = (text: string, width: number) => text.padEnd(width);
  console.log(
    `${pad('', 12)}${pad('p50 @0', 11)}${pad('p99 @0', 11)}${pad(`p50 @${VMS}`, 13)}${pad(`p99 @${VMS}`, 13)}${pad('ratio p50', 11)}goals`,
  );
  const verdicts: boolean[] = [];
  for (const kind of ['register', 'deregister'] as const) {
    const a = at0[kind].client;
    const b = atN[kind].client;
    const ratio = p50(b) / p50(a);
    const ratioOk = ratio <= 1.5;
    const p50Ok = p50(b) <= 20;
    verdicts.push(ratioOk, p50Ok);
    console.log(
      `${pad(kind, 12)}${pad(ms(p50(a)), 11)}${pad(ms(p99(a)), 11)}${pad(ms(p50(b)), 13)}${pad(ms(p99(b)), 13)}${pad(ratio.toFixed(2), 11)}` +
        `ratio <= 1.5: goal ${ratioOk ? 'met' : 'NOT met'}; p50 <= 20 ms: goal ${p50Ok ? 'met' : 'NOT met'}`,
    );
  }
  console.log(
    `\nfull rebuild at ${VMS} VMs (service start with a populated store -> listening, fresh state dir): ${(atN.startMs / 1000).toFixed(1)} s` +
      ` (the service logs ${(atN.rebuildMs / 1000).toFixed(1)} s for table + host entries + dnsmasq; the rest is process start)`,
  );
  console.log(
    `  for comparison: start at 0 VMs ${(at0.startMs / 1000).toFixed(1)} s (logged rebuild ${(at0.rebuildMs / 1000).toFixed(2)} s);` +
      ` restart at ${VMS} with the host entries already written ${(warmStartMs / 1000).toFixed(1)} s`,
  );

  console.log('\nwhere the time goes, p50 per call (ms), from /metrics scraped after every call:');
  console.log(
    `${pad('', 20)}${pad('client e2e', 12)}${pad('in fastify', 12)}${pad('enforcer', 10)}${pad('fastify - enforcer', 20)}client - fastify`,
  );
  const diff = (x: readonly number[], y: readonly number[]) => x.map((v, i) => v - (y[i] ?? Number.NaN));
  for (const result of [at0, atN]) {
    for (const kind of ['register', 'deregister'] as const) {
      const c = result[kind];
      console.log(
        `${pad(`${kind} @${result.vms}`, 20)}${pad(p50(c.client).toFixed(1), 12)}${pad(p50(c.server).toFixed(1), 12)}` +
          `${pad(p50(c.enforce).toFixed(1), 10)}${pad(p50(diff(c.server, c.enforce)).toFixed(1), 20)}${p50(diff(c.client, c.server)).toFixed(1)}`,
      );
    }
  }
  console.log(
    '  enforcer = nft -f (deregister: one add to the revoked set; the deletions follow in a batch), host entry file;\n' +
      '  fastify - enforcer = auth, zod, SQLite reads/writes and the COMMIT (synchronous=FULL), audit and request logs;\n' +
      '  client - fastify = HTTP over loopback, fetch, JSON.',
  );
  console.log(`\neach part alone at ${VMS} VMs, same namespace, p50 (p99) in ms, ${COMPONENT_SAMPLES} samples:`);
  const line = (what: string, values: readonly number[]) =>
    console.log(`  ${pad(what, 64)}${p50(values).toFixed(1)} (${p99(values).toFixed(1)})`);
  line('nft -f: add one NIC (register)', parts.nftAdd);
  line('nft -f: delete one NIC at once (what deregister avoids)', parts.nftDelete);
  line('nft -f: revoke one NIC (deregister)', parts.nftRevoke);
  line('nft -f: delete a revoked NIC (the batch, off the request)', parts.nftCleanup);
  line('host entry file: write, fsync, rename, fsync dir (register)', parts.hostPut);
  line('host entry file: unlink, fsync dir (deregister)', parts.hostRemove);
  line('SQLite register txn + deregister txn, synchronous=FULL', parts.sqliteFull);
  line('SQLite register txn + deregister txn, synchronous=NORMAL', parts.sqliteNormal);
  console.log(
    `\nCPU per register+deregister pair: service ${at0.serviceCpu.toFixed(1)} ms @0, ${atN.serviceCpu.toFixed(1)} ms @${VMS};` +
      ` dnsmasq (secure) ${at0.dnsmasqCpu.toFixed(1)} ms @0, ${atN.dnsmasqCpu.toFixed(1)} ms @${VMS};` +
      ` service RSS ${at0.rssMb.toFixed(0)} MB @0, ${atN.rssMb.toFixed(0)} MB @${VMS};` +
      ` service log lines per pair ${at0.logLines.toFixed(0)} @0, ${atN.logLines.toFixed(0)} @${VMS}` +
      ' (dnsmasq re-reads its host entries on each SIGHUP: at most one per batch window, 1 s at 10k entries)',
  );
  const r = parts.rebuild;
  console.log(
    `
the rebuild's parts alone at ${VMS} VMs, in this process: read the store ${r.read.toFixed(0)} ms,` +
      ` render the table ${r.render.toFixed(0)} ms (${(r.scriptBytes / 1e6).toFixed(1)} MB), nft -f ${r.apply.toFixed(0)} ms,` +
      ` host entries into an empty directory ${r.hostsCold.toFixed(0)} ms, again (unchanged) ${r.hostsWarm.toFixed(0)} ms`,
  );
  console.log(`\ngoals overall: ${verdicts.every(Boolean) ? 'met' : 'NOT met'}`);
  const load = loadavg().map((v) => v.toFixed(1));
  console.log(`(load average at the end: ${load.join(' ')}; other work on this machine skews the figures)`);
}

// ---------------------------------------------------------------------------------------------
// Inside the namespace

async function inner(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ticrypt-bench-'));
  // dnsmasq drops privileges (user nobody): it must be able to reach the host entry directories below.
  await chmod(dir, 0o755);
  const cleanup = async () => {
    for (const child of running) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`phase @0 (${dir}/at0)\n`);
    const at0 = await phase(join(dir, 'at0'), 0);
    process.stderr.write(`phase @${VMS} (${dir}/atN)\n`);
    const profileDir = CPU_PROF ? await mkdtemp(join(tmpdir(), 'ticrypt-bench-prof-')) : undefined;
    const atN = await phase(join(dir, 'atN'), VMS, profileDir);
    if (profileDir) process.stderr.write(`  service CPU profile(s) kept in ${profileDir}\n`);
    process.stderr.write(`restart @${VMS} with the host entries in place\n`);
    const warm = await startService(join(dir, 'atN/backend.db'), join(dir, 'atN/state'));
    await warm.stop();
    process.stderr.write('components alone\n');
    const parts = await components(join(dir, 'atN'));
    report(at0, atN, warm.startMs, parts);
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// In the root namespace: make the namespace, run this script inside it, remove it

async function outer(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('bench/backend.ts needs root (network namespaces, nftables)');
  const netns = `b${randomBytes(2).toString('hex')}-backend`;
  const inNs = (...command: string[]) => execa('ip', ['netns', 'exec', netns, ...command]);
  await execa('ip', ['netns', 'add', netns]);
  let child: ChildProcess | undefined;
  const forward = (signal: NodeJS.Signals) => child?.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    await inNs('ip', 'link', 'set', 'lo', 'up');
    // Each network's gateway interface, with the gateway address, so every dnsmasq binds as in production.
    for (const [i, network] of site.networks.entries()) {
      const peer = `${netns.slice(0, 5)}p${i}`;
      await inNs('ip', 'link', 'add', network.gatewayInterface, 'type', 'veth', 'peer', 'name', peer);
      await inNs(
        'ip',
        'addr',
        'add',
        `${network.gateway}/${network.subnet.split('/')[1]}`,
        'dev',
        network.gatewayInterface,
      );
      await inNs('ip', 'link', 'set', network.gatewayInterface, 'up');
      await inNs('ip', 'link', 'set', peer, 'up');
    }
    const script = fileURLToPath(import.meta.url);
    child = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, ...process.execArgv, script, ...process.argv.slice(2)],
      {
        stdio: 'inherit',
        env: { ...process.env, [NETNS_ENV]: netns },
      },
    );
    const code = await new Promise<number>((resolve) => child?.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
    return code;
  } finally {
    // Whatever the inner run left (it kills its own children; this catches a crash): only our namespace's processes.
    const { stdout } = await execa('ip', ['netns', 'pids', netns], { reject: false });
    for (const pid of String(stdout).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await execa('ip', ['netns', 'del', netns], { reject: false });
  }
}

if (process.env[NETNS_ENV] === undefined) {
  process.exitCode = await outer();
} else {
  await inner();
}
