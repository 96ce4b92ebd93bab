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
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { auditFiles } from '../src/backend/audit/service.js';
import { stopUlogd } from '../src/backend/audit/ulogd-process.js';
import { BackendLab, labUuid } from '../test/lab/backend-lab.js';
import { configure } from '../test/lab/probes.js';
import { median } from './netlab.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const SERVER = '198.51.100.10';
const HTTP = 5001;
const IPERF = 5201;
const VM = { network: 'secure', mac: '52:54:00:be:a0:01', vm: labUuid(0xbea) };
type Mode = 'on' | 'off';

const p = `ba${randomBytes(2).toString('hex')}`;
const children: { kill: (signal?: NodeJS.Signals) => boolean }[] = [];
let lab: BackendLab<'a'> | undefined;
let work = '';
let recordsDir = '';

async function tearDown(): Promise<void> {
  for (const child of children) child.kill('SIGTERM');
  await sleep(1000);
  for (const child of children) child.kill('SIGKILL');
  if (lab !== undefined) {
    for (const service of lab.services) await service.stop().catch(() => undefined);
    await stopUlogd(auditFiles(join(lab.paths.state, 'flow-audit')).pid).catch(() => undefined);
    await lab.remove();
    lab = undefined;
  }
  for (const dir of [work, recordsDir]) if (dir !== '') await rm(dir, { recursive: true, force: true });
}

function spawn(ns: string, program: string, args: readonly string[]) {
  const child = execa('ip', ['netns', 'exec', ns, program, ...args], { reject: false, stdin: 'ignore' });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  const stopOnSignal = () => void tearDown().finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-`));
  recordsDir = await mkdtemp(join(tmpdir(), `ticrypt-${p}-records-`));
  // The service's arguments, changed between modes (startService reads them at each start).
  const serveArgs: string[] = [];
  try {
    lab = await BackendLab.create(p, {
      site: { networks: { secure: { preset: 'secure' } } },
      vms: { a: VM },
      internet: [`${SERVER}/24`],
      tokens: { 'kvm-1': [], ops: ['--admin'] },
      serveArgs,
    });
    const l = lab;
    for (const key of ['time_wait', 'fin_wait', 'close_wait', 'last_ack', 'close'])
      await l.backend.run('sysctl', ['-qw', `net.netfilter.nf_conntrack_tcp_timeout_${key}=1`]);
    await l.vm.a.run('sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1']);
    await l.vm.a.run('sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
    await l.startService();
    await l.place(VM.vm, ['kvm-1']);
    const { status, json } = await l.call('POST', '/v1/register', 'kvm-1', {
      vmUuid: VM.vm,
      vmName: 'vm-a',
      mac: VM.mac,
      network: 'secure',
      generation: 1,
    });
    if (status !== 200) throw new Error(`register: ${status} ${JSON.stringify(json)}`);
    await configure(l.vm.a, 'eth0', `${json.ip as string}/17`, l.network('secure').gateway);
    await l.allow('a', [
      { address: SERVER, protocol: 'tcp', ports: HTTP },
      { address: SERVER, protocol: 'tcp', ports: IPERF },
    ]);
    const config = [
      'worker_processes 2;',
      `pid ${work}/nginx.pid;`,
      `error_log ${work}/error.log;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${work}/body;`,
      `  proxy_temp_path ${work}/proxy;`,
      '  keepalive_timeout 0;',
      `  server { listen ${SERVER}:${HTTP} backlog=4096; location / { return 200 "x"; } }`,
      '}',
    ].join('\n');
    await writeFile(join(work, 'nginx.conf'), `${config}\n`);
    spawn(l.internet.name, 'nginx', ['-c', join(work, 'nginx.conf'), '-g', 'daemon off;']);
    spawn(l.internet.name, 'iperf3', ['-s', '-B', SERVER, '-p', String(IPERF)]);
    await sleep(500);

    let current: Mode = 'off';
    const mode = async (want: Mode) => {
      if (want === current) return;
      for (const service of l.services) await service.stop();
      serveArgs.length = 0;
      if (want === 'on') serveArgs.push('--audit', '--audit-records', recordsDir);
      else await stopUlogd(auditFiles(join(l.paths.state, 'flow-audit')).pid);
      await l.startService();
      await sleep(1000);
      current = want;
    };
    const results: Record<Mode, { gbps: number[]; cps: number[] }> = {
      on: { gbps: [], cps: [] },
      off: { gbps: [], cps: [] },
    };
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const m of (round % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Mode[]) {
        await mode(m);
        const iperf = await l.vm.a.run(
          'iperf3',
          ['-c', SERVER, '-p', String(IPERF), '-t', '4', '-O', '1', '-P', '4', '-J'],
          { timeout: 60_000 },
        );
        const end = (JSON.parse(iperf.stdout) as { end: { sum_received: { bits_per_second: number } } }).end;
        results[m].gbps.push(end.sum_received.bits_per_second / 1e9);
        const wrk = await l.vm.a.run(
          'wrk',
          ['-t', '2', '-c', '32', '-d', '3s', '-H', 'Connection: close', `http://${SERVER}:${HTTP}/`],
          { timeout: 60_000 },
        );
        const rate = /Requests\/sec:\s+([0-9.]+)/.exec(wrk.stdout);
        if (rate === null) throw new Error(`wrk printed no rate: ${wrk.stdout}`);
        results[m].cps.push(Number(rate[1]));
        await sleep(1500);
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    const on = { gbps: median(results.on.gbps), cps: median(results.on.cps) };
    const off = { gbps: median(results.off.gbps), cps: median(results.off.cps) };
    console.log(
      `secure VM -> allowed server through the lab's backend, ${ROUNDS} rounds (medians), load average at the end ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
    console.log(`${'audit'.padEnd(6)} ${'iperf3 -P4 Gbit/s'.padStart(18)} ${'conns/s'.padStart(9)}`);
    for (const [name, r] of [
      ['on', on],
      ['off', off],
    ] as const)
      console.log(`${name.padEnd(6)} ${r.gbps.toFixed(2).padStart(18)} ${r.cps.toFixed(0).padStart(9)}`);
    const tp = on.gbps / off.gbps;
    const cr = on.cps / off.cps;
    console.log(`goal: throughput on/off >= 0.95: ${tp.toFixed(2)}x ${tp >= 0.95 ? 'met' : 'NOT met'}`);
    console.log(`goal: connection rate on/off >= 0.8: ${cr.toFixed(2)}x ${cr >= 0.8 ? 'met' : 'NOT met'}`);
  } finally {
    await tearDown();
  }
}

await main();
