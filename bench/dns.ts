/**
 * The DNS front's cost: the latency it adds to a cached and to an uncached
 * answer over a resolver alone (dnsmasq on the same gateway address, as the
 * controlled networks had before the front), and the queries per second it
 * sustains, with the goals judged (cached p50 within 1 ms of the resolver
 * alone; at least 5,000 queries/s). Also the figures its design rests on:
 * one nft transaction per answer spawned (`nft -f`) against one long-lived
 * `nft -i`, and the round trip a local dnsmasq cache would add per answer.
 * Needs root and a build (`npm run build`); about a minute on 2 cores.
 *
 *     node --import tsx bench/dns.ts [SAMPLES=300] [SECONDS=3]
 *
 *     vm1, vm2 ── bridge <p>g1 192.168.128.1 (backend) ── <p>up 198.51.100.1 ═══ eth0 198.51.100.53 (resolver)
 *                 root 198.18.0.2 ── <p>m1 198.18.0.1 (API)
 *
 * The resolver (dnsmasq) answers every name from its own records: an
 * "uncached" answer is one the front (or the baseline dnsmasq) has to ask it
 * for. Every name answers its own address, so each first answer for a VM
 * opens an element. Everything is removed at the end, also on error.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

const args = process.argv.slice(2);
const SAMPLES = Number(args[0] ?? 300);
const SECONDS = Number(args[1] ?? 3);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const p = `b${randomBytes(2).toString('hex')}`;
const NS = { vm1: `${p}-vm1`, vm2: `${p}-vm2`, bk: `${p}-bk`, in: `${p}-in`, scratch: `${p}-nft` };
const GW = '192.168.128.1';
const RESOLVER = '198.51.100.53';
const API = 'http://198.18.0.1:8443';
const MACS = { vm1: '52:54:00:be:00:01', vm2: '52:54:00:be:00:02' };
const VM_UUIDS = { vm1: '0b1d2c3e-0000-4000-8000-0000000be001', vm2: '0b1d2c3e-0000-4000-8000-0000000be002' };
/** Names per kind; every name has its own address in 10.77.0.0/16. */
const KINDS = { c: SAMPLES, o: SAMPLES, ub: SAMPLES, uf: SAMPLES, l: 100 } as const;

/** How every background program here runs: its output ignored, ended by this script. */
const BACKGROUND = { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' } as const;
type Child = ResultPromise<typeof BACKGROUND>;
const children: Child[] = [];
let work = '';

const inNs = (ns: string, program: string, argv: readonly string[]) =>
  execa('ip', ['netns', 'exec', ns, program, ...argv], { timeout: 120_000 });

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))] ?? Number.NaN;
}

/** The client script in a namespace; its JSON line. */
async function client<T>(ns: string, ...argv: string[]): Promise<T> {
  const { stdout } = await execa(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', 'bench/dns-client.ts', ...argv],
    {
      cwd: ROOT,
      timeout: 300_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as T;
}

const latency = async (ns: string, server: string, kind: string, from: number, count: number) => {
  const result = await client<{ ms: number[]; failed: number }>(
    ns,
    'latency',
    server,
    `${kind}{i}.bench.example`,
    String(from),
    String(count),
  );
  if (result.failed > 0) throw new Error(`${result.failed} ${kind} queries to ${server} got no address`);
  return result.ms;
};

const load = (ns: string, server: string, kind: string, names: number) =>
  client<{ qps: number; answered: number; sent: number }>(
    ns,
    'load',
    server,
    `${kind}{i}.bench.example`,
    String(names),
    '64',
    String(SECONDS),
  );

/** A dnsmasq in the foreground, as this process's child (wrapped: awaiting the child itself waits for its exit). */
async function dnsmasq(ns: string, name: string, lines: readonly string[]): Promise<{ child: Child }> {
  const conf = join(work, `${name}.conf`);
  await writeFile(conf, `${[...lines, `pid-file=${join(work, `${name}.pid`)}`].join('\n')}\n`);
  const child = execa(
    'ip',
    ['netns', 'exec', ns, 'dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`],
    BACKGROUND,
  );
  children.push(child);
  await sleep(300);
  return { child };
}

async function stop(child: Child | undefined): Promise<void> {
  if (child === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await child;
  clearTimeout(timer);
}

async function api(method: string, path: string, token: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${API}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as unknown;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function setUp(): Promise<void> {
  for (const ns of Object.values(NS)) await execa('ip', ['netns', 'add', ns]);
  for (const ns of Object.values(NS)) await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  await inNs(NS.bk, 'ip', ['link', 'add', `${p}g1`, 'type', 'bridge']);
  await inNs(NS.bk, 'ip', ['addr', 'add', `${GW}/17`, 'dev', `${p}g1`]);
  await inNs(NS.bk, 'ip', ['link', 'set', `${p}g1`, 'up']);
  for (const vm of ['vm1', 'vm2'] as const) {
    await execa('ip', [
      'link',
      'add',
      `${p}${vm}`,
      'netns',
      NS.bk,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      NS[vm],
    ]);
    await inNs(NS[vm], 'ip', ['link', 'set', 'eth0', 'address', MACS[vm]]);
    await inNs(NS[vm], 'ip', ['link', 'set', 'eth0', 'up']);
    await inNs(NS.bk, 'ip', ['link', 'set', `${p}${vm}`, 'master', `${p}g1`, 'up']);
  }
  await execa('ip', ['link', 'add', `${p}up`, 'netns', NS.bk, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.in]);
  await inNs(NS.bk, 'ip', ['addr', 'add', '198.51.100.1/24', 'dev', `${p}up`]);
  await inNs(NS.bk, 'ip', ['link', 'set', `${p}up`, 'up']);
  await inNs(NS.in, 'ip', ['addr', 'add', `${RESOLVER}/24`, 'dev', 'eth0']);
  await inNs(NS.in, 'ip', ['link', 'set', 'eth0', 'up']);
  await execa('ip', ['link', 'add', `${p}m0`, 'type', 'veth', 'peer', 'name', `${p}m1`, 'netns', NS.bk]);
  await execa('ip', ['addr', 'add', '198.18.0.2/24', 'dev', `${p}m0`]);
  await execa('ip', ['link', 'set', `${p}m0`, 'up']);
  await inNs(NS.bk, 'ip', ['addr', 'add', '198.18.0.1/24', 'dev', `${p}m1`]);
  await inNs(NS.bk, 'ip', ['link', 'set', `${p}m1`, 'up']);

  const records: string[] = [];
  let k = 1;
  for (const [kind, count] of Object.entries(KINDS)) {
    for (let i = 0; i < count; i += 1, k += 1) {
      records.push(`host-record=${kind}${i}.bench.example,10.77.${k >> 8}.${k & 255}`);
    }
  }
  await dnsmasq(NS.in, 'resolver', [
    ...['interface=eth0', 'bind-interfaces', `listen-address=${RESOLVER}`, 'except-interface=lo', 'no-resolv'],
    ...['no-hosts', 'port=53', 'local-ttl=300', 'log-facility=/dev/null', ...records],
  ]);
}

async function tearDown(): Promise<void> {
  for (const child of children) await stop(child);
  for (const ns of Object.values(NS)) await execa('ip', ['netns', 'del', ns], { reject: false });
  await execa('ip', ['link', 'del', `${p}m0`], { reject: false });
  if (work) await rm(work, { recursive: true, force: true });
}

async function configure(vm: 'vm1' | 'vm2', ip: string): Promise<void> {
  await inNs(NS[vm], 'ip', ['addr', 'flush', 'dev', 'eth0']);
  await inNs(NS[vm], 'ip', ['addr', 'add', `${ip}/17`, 'dev', 'eth0']);
  await inNs(NS[vm], 'ip', ['route', 'replace', 'default', 'via', GW]);
}

interface Side {
  cached: number[];
  uncached: number[];
  qps: number;
  cachedOpen?: number[];
}

/** The resolver alone: dnsmasq on the gateway address, caching, forwarding to the resolver (no firewall table). */
async function baseline(): Promise<Side> {
  await configure('vm1', '192.168.129.10');
  const { child: resolver } = await dnsmasq(NS.bk, 'baseline', [
    ...[`interface=${p}g1`, 'bind-interfaces', `listen-address=${GW}`, 'except-interface=lo', 'no-resolv'],
    ...['no-hosts', 'port=53', `server=${RESOLVER}`, 'cache-size=10000', 'log-facility=/dev/null'],
  ]);
  await latency(NS.vm1, GW, 'c', 0, SAMPLES);
  const cached = await latency(NS.vm1, GW, 'c', 0, SAMPLES);
  const uncached = await latency(NS.vm1, GW, 'ub', 0, SAMPLES);
  await latency(NS.vm1, GW, 'l', 0, KINDS.l);
  const { qps } = await load(NS.vm1, GW, 'l', KINDS.l);
  await stop(resolver);
  return { cached, uncached, qps };
}

/** The front: the real service, both VMs registered, `*.bench.example` allowed. */
async function front(): Promise<{ side: Side; metrics: string }> {
  const site = {
    name: 'bench',
    backend: { management: { address: '198.18.0.1', port: 8443 }, uplink: `${p}up`, upstreamDns: [RESOLVER] },
    networks: { secure: { preset: 'secure', gatewayInterface: `${p}g1` } },
  };
  const paths = { site: join(work, 'site.json'), store: join(work, 'backend.db'), state: join(work, 'state') };
  await writeFile(paths.site, JSON.stringify(site));
  const cli = join(ROOT, 'dist/cli/main.js');
  const token = async (...argv: string[]) =>
    (await execa(process.execPath, [cli, 'backend', 'token', 'add', ...argv, '--store', paths.store])).stdout.trim();
  const host = await token('kvm-bench');
  const admin = await token('ops', '--admin');
  const service = execa(
    'ip',
    [
      ...['netns', 'exec', NS.bk, process.execPath, cli, 'backend', 'serve', '--site', paths.site, '--store'],
      ...[paths.store, '--state-dir', paths.state, '--listen', '198.18.0.1:8443', '--insecure-http'],
      ...['--dns-rate', '1000000'],
    ],
    BACKGROUND,
  );
  children.push(service);
  for (let i = 0; i < 200; i += 1) {
    if (
      await fetch(`${API}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  for (const vm of ['vm1', 'vm2'] as const) {
    // The VM launcher places each VM on the host first: only then may its token register the NIC.
    await api('PUT', `/v1/vms/${VM_UUIDS[vm]}/placement`, admin, { hosts: ['kvm-bench'] });
    const { ip } = (await api('POST', '/v1/register', host, {
      vmUuid: VM_UUIDS[vm],
      vmName: vm,
      mac: MACS[vm],
      network: 'secure',
      generation: 1,
    })) as { ip: string };
    await configure(vm, ip);
    await api('PUT', `/v1/vms/${VM_UUIDS[vm]}/allow-list`, admin, {
      entries: [{ domain: '*.bench.example', protocol: 'udp', ports: 9, specialRanges: ['10.77.0.0/16'] }],
    });
  }
  await latency(NS.vm1, GW, 'c', 0, SAMPLES);
  const cached = await latency(NS.vm1, GW, 'c', 0, SAMPLES);
  await latency(NS.vm2, GW, 'o', 0, SAMPLES);
  const cachedOpen = await latency(NS.vm1, GW, 'o', 0, SAMPLES);
  const uncached = await latency(NS.vm1, GW, 'uf', 0, SAMPLES);
  await latency(NS.vm1, GW, 'l', 0, KINDS.l);
  const { qps } = await load(NS.vm1, GW, 'l', KINDS.l);
  const metrics = await (await fetch(`${API}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
  await stop(service);
  return { side: { cached, uncached, qps, cachedOpen }, metrics };
}

/** What a local dnsmasq cache behind the front would add per answer: one cached round trip on loopback. */
async function loopbackCache(): Promise<number[]> {
  const { child: local } = await dnsmasq(NS.bk, 'loopback', [
    ...['interface=lo', 'bind-interfaces', 'listen-address=127.0.0.1', 'port=5353', 'no-resolv', 'no-hosts'],
    ...[`server=${RESOLVER}`, 'cache-size=10000', 'log-facility=/dev/null'],
  ]);
  await latency(NS.bk, '127.0.0.1:5353', 'c', 0, SAMPLES);
  const ms = await latency(NS.bk, '127.0.0.1:5353', 'c', 0, SAMPLES);
  await stop(local);
  return ms;
}

async function main(): Promise<void> {
  work = await mkdtemp(join(tmpdir(), `ticrypt-bench-dns-`));
  await execa('chmod', ['755', work]);
  const stopOnSignal = () => void tearDown().finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    await setUp();
    const nft = await client<{ spawned: number[]; interactive: number[]; batched100: number }>(
      NS.scratch,
      'nft',
      '200',
    );
    const alone = await baseline();
    const withFront = await front();
    const loopback = await loopbackCache();

    const f = (ms: number) => `${ms.toFixed(3)} ms`;
    const row = (what: string, base: number[] | undefined, measured: number[]) => {
      const [b50, b99, m50, m99] = [base, base, measured, measured].map((v, i) =>
        v === undefined ? Number.NaN : percentile(v, i % 2 === 0 ? 50 : 99),
      ) as [number, number, number, number];
      const added = base === undefined ? '' : ` | added p50 ${f(m50 - b50)}, ratio p50 ${(m50 / b50).toFixed(2)}`;
      const baseText = base === undefined ? '' : `resolver alone p50 ${f(b50)} p99 ${f(b99)} | `;
      console.log(`${what.padEnd(26)} ${baseText}front p50 ${f(m50)} p99 ${f(m99)}${added}`);
      return m50 - b50;
    };
    console.log(`DNS front, ${SAMPLES} sequential queries per row, load average ${loadavg()[0]?.toFixed(2)} (2 cores)`);
    const cachedAdded = row('cached', alone.cached, withFront.side.cached);
    row('cached, first for this VM', alone.cached, withFront.side.cachedOpen ?? []);
    row('uncached (+ open)', alone.uncached, withFront.side.uncached);
    const ratio = withFront.side.qps / alone.qps;
    console.log(
      `sustained (64 in flight, ${SECONDS} s, cached names): resolver alone ${alone.qps.toFixed(0)} q/s | front ${withFront.side.qps.toFixed(0)} q/s | ratio ${ratio.toFixed(2)}`,
    );
    console.log(
      `nft per answer: nft -f spawned p50 ${f(percentile(nft.spawned, 50))} p99 ${f(percentile(nft.spawned, 99))} | one nft -i p50 ${f(percentile(nft.interactive, 50))} p99 ${f(percentile(nft.interactive, 99))} | ratio p50 ${(percentile(nft.spawned, 50) / percentile(nft.interactive, 50)).toFixed(1)} | 100 answers coalesced in one nft -i transaction ${f(nft.batched100)}`,
    );
    console.log(
      `a local dnsmasq cache behind the front would add one loopback round trip per answer: p50 ${f(percentile(loopback, 50))} p99 ${f(percentile(loopback, 99))}`,
    );
    const metric = (name: string) =>
      /\n(\S+) (\d+(?:\.\d+)?)/.exec(withFront.metrics.slice(withFront.metrics.indexOf(`\n${name} `) - 1))?.[2];
    console.log(
      `front opens: ${metric('ticrypt_dns_opened_elements_total')} elements written in ${metric('ticrypt_dns_transactions_total')} transactions, ${metric('ticrypt_dns_skipped_elements_total')} found open (no write)`,
    );
    const goals = [
      [`cached p50 within 1 ms of the resolver alone (added ${f(cachedAdded)})`, cachedAdded <= 1],
      [`at least 5,000 queries/s (${withFront.side.qps.toFixed(0)})`, withFront.side.qps >= 5000],
    ] as const;
    for (const [goal, met] of goals) console.log(`goal: ${goal}: ${met ? 'met' : 'NOT MET'}`);
  } finally {
    await tearDown();
  }
}

await main();
