/**
 * What the flow audit (issue 16) costs a secure VM's traffic: the real service
 * (dist/) in the lab (OVS bridge, backend namespace, internet namespace), one
 * VM namespace reaching an allowed server with auditing on (`--audit`:
 * ulogd2 reading conntrack end events, the service writing hash-chained
 * records) and off (the service restarted without it, ulogd stopped), in
 * interleaved rounds (each starting with the other mode): forwarded
 * throughput (iperf3, 4 streams) and new connections per second (wrk against
 * nginx, a new connection per request, as bench/proxy.ts), medians. Goals on
 * this 2-core machine: throughput >= 0.95x, connection rate >= 0.8x of off.
 * Needs root, the lab (OVS), ulogd2, iperf3, wrk, nginx; run it under the lab
 * lock, after `npm run build`:
 *
 *     flock -o /work/lab.lock npm run bench:audit -- [ROUNDS=3]
 *
 * It also prints each process's CPU (% of one core) while wrk ran, and the
 * conntrack table's size as each wrk starts (the same state in each mode).
 * Other sessions' load on the machine makes the rates noisy: compare on and
 * off within one run. To find where the cost goes:
 * `AUDIT_BENCH_MODES=off,marks,ulogd,on` (see {@link Mode});
 * `AUDIT_BENCH_PROFILE=DIR` writes the service's CPU profile per mode and a
 * system-wide `perf record` of each wrk window.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { AUDIT_SYSCTLS, auditFiles } from '../src/backend/audit/service.js';
import { renderUlogdConfig } from '../src/backend/audit/ulogd-config.js';
import { runningUlogd, stopUlogd } from '../src/backend/audit/ulogd-process.js';
import { AuditLab } from '../test/lab/audit-lab.js';
import { labUuid } from '../test/lab/backend-lab.js';
import { median } from './netlab.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const SERVER = '198.51.100.10';
const HTTP = 5001;
const IPERF = 5201;
const VM = { network: 'secure', mac: '52:54:00:be:a0:01', vm: labUuid(0xbea) };
/**
 * `off`: no audit; `on`: the audit as shipped. For finding where its cost goes
 * (AUDIT_BENCH_MODES=off,marks,ulogd,on): `marks`: the audit's rules (ct mark
 * bits, refusal counters) and the service's polling, no ulogd; `ulogd`: ulogd
 * writing events to a file no reader follows.
 */
type Mode = 'on' | 'off' | 'marks' | 'ulogd';
const MODES = (process.env.AUDIT_BENCH_MODES ?? 'on,off').split(',') as Mode[];
if (MODES.some((m) => !['on', 'off', 'marks', 'ulogd'].includes(m)))
  throw new Error(`AUDIT_BENCH_MODES: expected on, off, marks, ulogd; found ${MODES.join(',')}`);
/** A directory for profiles (AUDIT_BENCH_PROFILE): the service's --cpu-prof per mode, perf of each wrk window. */
const PROFILE = process.env.AUDIT_BENCH_PROFILE;
const CPU_PROF_PRELOAD = `const inspector = require('node:inspector');
const session = new inspector.Session();
session.connect();
session.post('Profiler.enable', () => session.post('Profiler.start'));
process.on('exit', () => session.post('Profiler.stop', (error, result) => {
  if (!error) require('node:fs').writeFileSync(OUT, JSON.stringify(result.profile));
}));
`;
const WRK_SECONDS = Number(process.env.AUDIT_BENCH_WRK_SECONDS ?? 3);

/** CPU ticks per pid (with its name: comm, the service as `service`, this bench as `bench`), and the machine's softirq and idle. */
type CpuTicks = Map<string, { name: string; ticks: number }>;
/** % of one core per process name over a window. */
type CpuShare = Record<string, number>;
const HZ = 100;

async function cpuSnapshot(servicePid: number): Promise<{ at: number; ticks: CpuTicks }> {
  const ticks: CpuTicks = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the comm; starttime field 22.
    const pid = Number(entry);
    const name = pid === servicePid ? 'service' : pid === process.pid ? 'bench' : comm.replace(/[/:].*$/, '');
    ticks.set(`${entry}@${fields[19]}`, { name, ticks: Number(fields[11]) + Number(fields[12]) });
  }
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  ticks.set('softirq', { name: 'softirq', ticks: cpu[6] ?? 0 });
  ticks.set('idle', { name: 'idle', ticks: (cpu[3] ?? 0) + (cpu[4] ?? 0) });
  return { at: Date.now(), ticks };
}

function cpuShare(before: { at: number; ticks: CpuTicks }, after: { at: number; ticks: CpuTicks }): CpuShare {
  const seconds = (after.at - before.at) / 1000;
  const share: CpuShare = {};
  for (const [key, { name, ticks }] of after.ticks) {
    // A process that started during the window counts from 0; one that ended is not seen (short-lived children).
    const delta = ticks - (before.ticks.get(key)?.ticks ?? 0);
    share[name] = (share[name] ?? 0) + (100 * delta) / HZ / seconds;
  }
  return share;
}

const p = `ba${randomBytes(2).toString('hex')}`;
let audit: AuditLab<'a'> | undefined;
let work = '';

async function tearDown(): Promise<void> {
  await audit?.remove();
  audit = undefined;
  if (work !== '') await rm(work, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const stopOnSignal = () => void tearDown().finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-`));
  // The service's arguments, changed between modes (startService reads them at each start).
  const serveArgs: string[] = [];
  try {
    audit = await AuditLab.create(p, {
      site: { networks: { secure: { preset: 'secure' } } },
      vms: { a: VM },
      internet: [`${SERVER}/24`],
      tokens: { 'kvm-1': [], ops: ['--admin'] },
      serveArgs,
      loadVms: ['a'],
    });
    const a = audit;
    const l = a.lab;
    const recordsDir = a.recordsDir;
    await a.startService();
    await a.registerVm('a');
    await l.allow('a', [
      { address: SERVER, protocol: 'tcp', ports: HTTP },
      { address: SERVER, protocol: 'tcp', ports: IPERF },
    ]);
    await a.startNginx(l.internet.name, `${SERVER}:${HTTP}`);
    a.spawn(l.internet.name, 'iperf3', ['-s', '-B', SERVER, '-p', String(IPERF)]);
    await sleep(500);

    let current: Mode = 'off';
    const auditDir = join(l.paths.state, 'flow-audit');
    // The conntrack settings the audit sets, in every mode (they stay set when it stops): both modes pay for
    // byte counts and timestamps, and differ only in the audit's rules, ulogd and the reader.
    for (const [key, value] of Object.entries(AUDIT_SYSCTLS))
      await l.backend.run('sysctl', ['-qw', `${key.replaceAll('/', '.')}=${value}`]);
    const mode = async (want: Mode) => {
      if (want === current) return;
      // ulogd stopped while the service stops: the service's stop waits for its reaper, which waits for every
      // child the service left (ulogd among them), and a ulogd the service starts again meanwhile is found too.
      const ulogdGone = (async () => {
        for (let i = 0; i < 10; i += 1) {
          await stopUlogd(auditFiles(auditDir).pid);
          await sleep(300);
        }
      })();
      for (const service of l.services) await service.stop();
      await ulogdGone;
      await stopUlogd(auditFiles(auditDir).pid);
      serveArgs.length = 0;
      if (want !== 'off') serveArgs.push('--audit', '--audit-records', recordsDir);
      if (want === 'marks' || want === 'ulogd') serveArgs.push('--audit-ulogd', 'external');
      if (want === 'ulogd') {
        // ulogd as the service runs it, but writing where no reader follows.
        const conf = join(work, 'ulogd-sink.conf');
        await mkdir(auditDir, { recursive: true });
        await writeFile(
          conf,
          renderUlogdConfig({
            flowFile: join(work, 'sink-flows.json'),
            refusedFile: join(work, 'sink-refused.json'),
            logFile: join(work, 'sink-ulogd.log'),
            nflogGroup: 2,
          }),
        );
        await l.backend.run('sh', ['-c', ': > "$1"', 'sh', join(work, 'sink-flows.json')]);
        // In the backend namespace (where the conntrack events are), detached, found by its pid file.
        await l.backend.run('/usr/sbin/ulogd', ['-d', '-c', conf, '-p', auditFiles(auditDir).pid]);
        for (let i = 0; i < 100 && (await runningUlogd(auditFiles(auditDir).pid)) === undefined; i += 1)
          await sleep(20);
      }
      // Profiling: the service's JavaScript (written when it stops), per mode; node refuses --cpu-prof in
      // NODE_OPTIONS, so a preloaded script runs the inspector's profiler.
      if (PROFILE !== undefined) {
        const preload = join(PROFILE, 'cpu-prof.cjs');
        await writeFile(
          preload,
          CPU_PROF_PRELOAD.replace('OUT', JSON.stringify(join(PROFILE, `service-${want}-${Date.now()}.cpuprofile`))),
        );
        process.env.NODE_OPTIONS = `--require ${preload}`;
      }
      await l.startService();
      delete process.env.NODE_OPTIONS;
      await sleep(1000);
      current = want;
    };
    const results = Object.fromEntries(
      MODES.map((m) => [
        m,
        { gbps: [] as number[], cps: [] as number[], cpu: [] as CpuShare[], conntrack: [] as number[] },
      ]),
    ) as Record<Mode, { gbps: number[]; cps: number[]; cpu: CpuShare[]; conntrack: number[] }>;
    const serviceOf = () => l.services.at(-1)?.pid ?? -1;
    for (let round = 0; round < ROUNDS; round += 1) {
      // Each round starts with the next mode: every mode runs first, second, ... equally often.
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length] as Mode);
      for (const m of order) {
        await mode(m);
        const iperf = await l.vm.a.run(
          'iperf3',
          ['-c', SERVER, '-p', String(IPERF), '-t', '4', '-O', '1', '-P', '4', '-J'],
          { timeout: 60_000 },
        );
        const end = (JSON.parse(iperf.stdout) as { end: { sum_received: { bits_per_second: number } } }).end;
        results[m].gbps.push(end.sum_received.bits_per_second / 1e9);
        await sleep(500);
        // Profiling: the whole machine while wrk runs (perf report -i FILE --sort comm,dso,sym).
        const perf =
          PROFILE === undefined
            ? undefined
            : execa(
                'perf',
                [
                  'record',
                  '-a',
                  '-g',
                  '-o',
                  join(PROFILE, `perf-${m}-${round + 1}.data`),
                  '--',
                  'sleep',
                  String(WRK_SECONDS),
                ],
                { reject: false },
              );
        // The conntrack table as wrk starts: the same (near empty) in every mode, or the comparison is unfair.
        const entries = await l.backend
          .run('conntrack', ['-C'])
          .then((r) => Number(r.stdout.trim()))
          .catch(() => Number.NaN);
        results[m].conntrack.push(entries);
        const before = await cpuSnapshot(serviceOf());
        const wrk = await l.vm.a.run(
          'wrk',
          ['-t', '2', '-c', '32', '-d', `${WRK_SECONDS}s`, '-H', 'Connection: close', `http://${SERVER}:${HTTP}/`],
          { timeout: 60_000 },
        );
        const after = await cpuSnapshot(serviceOf());
        await perf;
        const rate = /Requests\/sec:\s+([0-9.]+)/.exec(wrk.stdout);
        if (rate === null) throw new Error(`wrk printed no rate: ${wrk.stdout}`);
        results[m].cps.push(Number(rate[1]));
        results[m].cpu.push(cpuShare(before, after));
        await sleep(1500);
      }
      process.stderr.write(
        `round ${round + 1}/${ROUNDS}: ${order.map((m) => `${m} ${(results[m].cps.at(-1) ?? 0).toFixed(0)}/s`).join(', ')}\n`,
      );
    }
    const summary = (m: Mode) => ({ gbps: median(results[m].gbps), cps: median(results[m].cps) });
    console.log(
      `secure VM -> allowed server through the lab's backend, ${ROUNDS} rounds (medians), load average at the end ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
    console.log(
      `${'audit'.padEnd(6)} ${'iperf3 -P4 Gbit/s'.padStart(18)} ${'conns/s'.padStart(9)}  conns/s each round (conntrack entries as wrk started)`,
    );
    for (const m of MODES)
      console.log(
        `${m.padEnd(6)} ${summary(m).gbps.toFixed(2).padStart(18)} ${summary(m).cps.toFixed(0).padStart(9)}  ${results[m].cps.map((x, k) => `${x.toFixed(0)} (${results[m].conntrack[k] ?? '?'})`).join(' ')}`,
      );
    // Where the CPU went while wrk ran: % of one core, medians over the rounds (2 cores = 200%).
    const who = [...new Set(MODES.flatMap((m) => results[m].cpu.flatMap((c) => Object.keys(c))))].filter((k) =>
      MODES.some((m) => median(results[m].cpu.map((c) => c[k] ?? 0)) >= 1),
    );
    console.log(`CPU while wrk ran, % of one core (medians): ${who.join(', ')}`);
    for (const m of MODES)
      console.log(
        `${m.padEnd(6)} ${who.map((k) => `${k} ${median(results[m].cpu.map((c) => c[k] ?? 0)).toFixed(0)}`).join(', ')}`,
      );
    if (MODES.includes('on') && MODES.includes('off')) {
      const on = summary('on');
      const off = summary('off');
      const tp = on.gbps / off.gbps;
      const cr = on.cps / off.cps;
      console.log(`goal: throughput on/off >= 0.95: ${tp.toFixed(2)}x ${tp >= 0.95 ? 'met' : 'NOT met'}`);
      console.log(`goal: connection rate on/off >= 0.8: ${cr.toFixed(2)}x ${cr >= 0.8 ? 'met' : 'NOT met'}`);
    }
  } finally {
    await tearDown();
  }
}

await main();
