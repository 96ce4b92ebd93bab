/**
 * Fail closed, measured: the real service (dist/) with VMS registered VMs x
 * 20 allow entries, one VM namespace flooding an allowed server with UDP (one
 * datagram per ms, each stamped), then `nft flush ruleset` in the backend's
 * namespace (what Debian's nftables.service does at boot and reload). Counted
 * at the receiver: datagrams that arrived while the table was absent (the
 * goal: 0); and the time until the table is back, until /healthz is 200
 * again, and until the flood arrives again. Needs root and the lab (OVS);
 * run it under the lab lock, after `npm run build`:
 *
 *     flock /work/lab.lock node --import tsx bench/failclosed.ts [VMS=10000] [ROUNDS=2]
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../src/backend/store/store.js';
import { findNetwork } from '../src/site/lookup.js';
import { API_URL, BackendLab, UPLINK_IPS } from '../test/lab/backend-lab.js';
import { configure } from '../test/lab/probes.js';
import { Receiver, sendUdp } from '../test/lab/receiver.js';
import { seedVms } from './fixtures.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const VMS = Number(args[0] ?? 10_000);
const ROUNDS = Number(args[1] ?? 2);
if (!Number.isInteger(VMS) || VMS < 0 || VMS > 1_000_000 || !Number.isInteger(ROUNDS) || ROUNDS < 1) {
  throw new Error(`usage: bench/failclosed.ts [VMS 0-1000000] [ROUNDS >= 1], found ${args.join(' ')}`);
}
const SERVER = '203.0.113.10';
const FLOOD_MAC = '52:54:00:ff:00:01';
const FLOOD_VM = '0b1d2c3e-0000-4000-8000-0000ffff0001';

interface Round {
  /** ms the flush took, and from its end to the start of the last poll that still found no table. */
  readonly flushMs: number;
  readonly windowMs: number;
  /** Datagrams that arrived while the table was absent. */
  readonly leaked: number;
  /** Datagrams sent (by their stamp) while the table was absent that arrived anyway. */
  readonly sentInWindow: number;
  /** Datagrams that arrived un-masqueraded (forwarded without the table), at any time. */
  readonly unmasqueraded: number;
  /** Datagrams of the flood that never arrived (the gap the flush made). */
  readonly lost: number;
  /** ms from the flush command's start to the guard's audit of the loss; from its end to: the chains listed again, /healthz 200, the flood arriving. */
  readonly detectedMs: number;
  readonly tableBackMs: number;
  readonly healthyMs: number;
  readonly flowingMs: number;
  /** How many /healthz answers in the window were 503. */
  readonly unhealthy: number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/failclosed.ts needs root (namespaces, OVS, nftables)');
  const p = `f${randomBytes(2).toString('hex')}`;
  const lab = await BackendLab.create(p, {
    site: {
      backend: {
        api: { requestsPerMinute: 1_000_000 },
        registrations: { expireAfter: '1d', expireGrace: '1d', perHost: 1_000_000 },
      },
      networks: { secure: { preset: 'secure' }, service: { preset: 'service' }, datain: { preset: 'datain' } },
    },
    vms: { fl: { network: 'secure', mac: FLOOD_MAC } },
    internet: [`${SERVER}/24`],
    tokens: { 'kvm-1': [], ops: ['--admin'] },
  });
  let receiver: Receiver | undefined;
  try {
    const seeded = Date.now();
    const store = openStore(lab.paths.store);
    const secure = findNetwork(lab.site, 'secure');
    try {
      store.transaction(() => seedVms(store, secure, VMS));
    } finally {
      store.close();
    }
    process.stderr.write(`seeded ${VMS} VMs in ${Date.now() - seeded} ms; starting the service\n`);
    const startedAt = Date.now();
    await lab.startService(300_000);
    process.stderr.write(`service up after ${Date.now() - startedAt} ms\n`);
    receiver = await Receiver.start(lab.internet, [`udp:${SERVER}:5353`]);
    const place = await lab.call('PUT', `/v1/vms/${FLOOD_VM}/placement`, 'ops', { hosts: ['kvm-1'] });
    const allow = await lab.call('PUT', `/v1/vms/${FLOOD_VM}/allow-list`, 'ops', {
      entries: [{ address: SERVER, protocol: 'udp', ports: 5353 }],
    });
    const registered = await lab.call('POST', '/v1/register', 'kvm-1', {
      vmUuid: FLOOD_VM,
      vmName: 'flood',
      mac: FLOOD_MAC,
      network: 'secure',
      generation: 1,
    });
    if (place.status !== 200 || allow.status !== 200 || registered.status !== 200) {
      throw new Error(`set-up refused: ${JSON.stringify([place.json, allow.json, registered.json])}`);
    }
    const ip = registered.json.ip as string;
    await configure(lab.vm.fl, 'eth0', `${ip}/17`, secure.gateway);

    const rounds: Round[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      rounds.push(await flushRound(lab, receiver, ip, round));
      process.stderr.write(`round ${round + 1}: ${JSON.stringify(rounds.at(-1))}\n`);
    }
    report(rounds);
  } finally {
    await receiver?.stop();
    await lab.remove();
  }
}

async function flushRound(lab: BackendLab<'fl'>, receiver: Receiver, ip: string, round: number): Promise<Round> {
  const label = `flood${round}`;
  const flood = sendUdp(lab.vm.fl, `${ip}:${42000 + round}`, `${SERVER}:5353`, {
    count: 25_000,
    intervalMs: 1,
    label,
  });
  await sleep(2000);
  const arrivals = () => receiver.arrivals.filter((a) => a.data?.startsWith(`${label} `));
  if (arrivals().length === 0) throw new Error('the flood does not arrive before the flush: check the set-up');
  const health: { t: number; status: number }[] = [];
  let polling = true;
  const healthPoll = (async () => {
    while (polling) {
      const answer = await fetch(`${API_URL}/healthz`).catch(() => undefined);
      if (answer) health.push({ t: Date.now(), status: answer.status });
      await sleep(10);
    }
  })();
  const auditsBefore = (await lab.audits()).length;
  const flushStart = Date.now();
  await lab.backend.run('nft', ['flush', 'ruleset']);
  const flushDone = Date.now();
  let lastAbsent = flushDone;
  let back = 0;
  while (Date.now() - flushDone < 120_000) {
    const pollStart = Date.now();
    const listed = JSON.parse((await lab.backend.run('nft', ['-j', 'list', 'chains'])).stdout) as {
      nftables: { chain?: { table: string; name: string } }[];
    };
    if (listed.nftables.some((item) => item.chain?.table === 'ticrypt' && item.chain.name === 'source')) {
      back = Date.now();
      break;
    }
    lastAbsent = pollStart;
    await sleep(5);
  }
  let flowing = 0;
  while (flowing === 0 && Date.now() - flushDone < 120_000) {
    flowing = arrivals().find((a) => a.t > Math.max(back, flushDone))?.t ?? 0;
    await sleep(20);
  }
  let healthy = 0;
  while (healthy === 0 && Date.now() - flushDone < 120_000) {
    healthy = health.find((h) => h.t > flushDone && h.status === 200 && h.t > back)?.t ?? 0;
    await sleep(20);
  }
  polling = false;
  await healthPoll;
  const sentCount = await flood;
  const lost = (await lab.audits())
    .slice(auditsBefore)
    .find((e) => e.event === 'guard' && e.outcome === 'lost' && e.what === 'table');
  const sent = (a: { data?: string }) => Number(a.data?.split(' ')[2]);
  return {
    flushMs: flushDone - flushStart,
    windowMs: lastAbsent - flushDone,
    leaked: arrivals().filter((a) => a.t > flushDone + 5 && a.t < lastAbsent).length,
    sentInWindow: arrivals().filter((a) => sent(a) > flushDone && sent(a) < lastAbsent).length,
    unmasqueraded: arrivals().filter((a) => !a.from.startsWith(`${UPLINK_IPS[0]}:`)).length,
    lost: sentCount - new Set(arrivals().map((a) => a.data?.split(' ')[1])).size,
    detectedMs: lost === undefined ? Number.NaN : Number(lost.time) - flushStart,
    tableBackMs: back - flushDone,
    healthyMs: healthy - flushDone,
    flowingMs: flowing - flushDone,
    unhealthy: health.filter((h) => h.t > flushDone && h.t < back && h.status === 503).length,
  };
}

function report(rounds: readonly Round[]): void {
  console.log(
    `\nfail closed: ${VMS} VMs x 20 entries registered; one VM floods ${SERVER} (allowed) at 1 datagram/ms; ` +
      `nft flush ruleset in the backend namespace, ${rounds.length} round(s); receiver at ${SERVER}, ` +
      `masqueraded from ${UPLINK_IPS[0]}\n`,
  );
  console.log(
    'round  window(ms)  arrived-in-window  sent-in-window  un-masqueraded  lost  lost-audited(ms)  table-back(ms)  healthz-200(ms)  flowing(ms)  503s-seen',
  );
  rounds.forEach((r, i) =>
    console.log(
      `${String(i + 1).padEnd(7)}${String(r.windowMs).padEnd(12)}${String(r.leaked).padEnd(19)}${String(r.sentInWindow).padEnd(16)}` +
        `${String(r.unmasqueraded).padEnd(16)}${String(r.lost).padEnd(6)}` +
        `${String(r.detectedMs).padEnd(18)}${String(r.tableBackMs).padEnd(16)}${String(r.healthyMs).padEnd(17)}${String(r.flowingMs).padEnd(13)}${r.unhealthy}`,
    ),
  );
  const leaked = rounds.reduce((sum, r) => sum + r.leaked + r.sentInWindow + r.unmasqueraded, 0);
  const slowest = Math.max(...rounds.map((r) => r.tableBackMs));
  console.log(
    `\ngoal: 0 datagrams through while the table is absent (found ${leaked}: ${leaked === 0 ? 'met' : 'NOT met'}); table back within seconds (slowest ${(slowest / 1000).toFixed(1)} s)`,
  );
}

await main();
