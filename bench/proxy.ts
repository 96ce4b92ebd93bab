/**
 * SSH access's data path, in namespaces (client, backend, VM) and in one run:
 * throughput (iperf3, 4 streams), new connections per second (wrk against
 * nginx, a new connection per request) and 64-byte round trip (sockperf
 * ping-pong on one connection) from the client to the VM's port 22 through
 *   - the project's DNAT (table inet ticrypt as the service renders it, the
 *     VM registered with a forwarded port),
 *   - one hand-written DNAT rule (and no other table),
 *   - socat on the backend (fork per connection),
 *   - a Node `net` pipe proxy on the backend (the software proxying the seed replaces);
 * then what adding or removing one forward costs with none and with 10,000
 * present. The load side and the VM's servers are native programs (Debian's
 * iperf3, wrk, sockperf, nginx-light), so the proxies are what is measured.
 * Needs root, iperf3, socat, wrk, sockperf, nginx and conntrack.
 *
 *     node --import tsx bench/proxy.ts [ROUNDS] [MAPPINGS]
 *
 *     client 203.0.113.50 ── up 203.0.113.1  backend  gsec 192.168.128.1 ── eth0 192.168.129.10 VM (port 22)
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { nftRunner, renderChange, renderRuleset, type NicState } from '../src/backend/nft/index.js';
import type { Registration } from '../src/protocol/api.js';
import { parseSite } from '../src/site/parse.js';
import { type Background, median, NetLab } from './netlab.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[0] ?? 3);
const MAPPINGS = Number(args[1] ?? 10_000);
const SAMPLES = 50;
const STREAMS = 4;
const BACKEND = '203.0.113.1';
const VM_IP = '192.168.129.10';
const VM_MAC = '52:54:00:00:00:0a';
const PORTS = { dnat: 22000, hand: 40000, socat: 40001, node: 40002 } as const;
type Path = keyof typeof PORTS;
const PATHS: readonly Path[] = ['dnat', 'hand', 'socat', 'node'];
const LABEL: Record<Path, string> = {
  dnat: "the project's DNAT",
  hand: 'one hand-written DNAT',
  socat: 'socat on the backend',
  node: 'Node net pipe proxy',
};

const site = parseSite({
  backend: { uplink: 'up' },
  networks: { secure: { preset: 'secure', gatewayInterface: 'gsec', ssh: { ports: '22000-54999' } } },
});

const hex = (v: number) => (v & 255).toString(16).padStart(2, '0');

/** NIC n of the secure network (n = 0: the measured VM), with the forward of port 22000 + n. */
function nic(n: number): NicState {
  const registration: Registration = {
    hostId: 'bench',
    vmUuid: `vm-${n}`,
    vmName: `vm${n}`,
    mac: n === 0 ? VM_MAC : `52:54:01:${hex(n >> 16)}:${hex(n >> 8)}:${hex(n)}`,
    network: 'secure',
    ip: n === 0 ? VM_IP : `192.168.${130 + (n >> 8)}.${n & 255}`,
    generation: 1,
    nicId: n + 1,
  };
  return { registration, entries: [], ssh: { port: PORTS.dnat + n, sources: ['0.0.0.0/0'], narrowed: false } };
}

function state(nics: readonly NicState[]) {
  return {
    registrations: nics.map((n) => n.registration),
    allowLists: [],
    ssh: nics.map((n) => ({ ...n.ssh!, network: 'secure', mac: n.registration.mac })),
  };
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main(): Promise<void> {
  const lab = new NetLab();
  try {
    const client = await lab.netns('client');
    const backend = await lab.netns('backend');
    const vm = await lab.netns('vm');
    await lab.link(
      { ns: client, name: 'eth0', addresses: ['203.0.113.50/24'] },
      { ns: backend, name: 'up', addresses: [`${BACKEND}/24`] },
    );
    await lab.link(
      { ns: backend, name: 'gsec', addresses: ['192.168.128.1/17'] },
      { ns: vm, name: 'eth0', addresses: [`${VM_IP}/17`], mac: VM_MAC },
    );
    await lab.run(vm, 'ip', ['route', 'add', 'default', 'via', '192.168.128.1']);
    await lab.run(backend, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (const ns of [client, backend]) await lab.run(ns, 'sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1']);
    const apply = nftRunner({ netns: backend, timeout: 600_000 });
    const hand = [
      'table ip bench_hand {',
      '  chain pre { type nat hook prerouting priority dstnat; policy accept;',
      `    iifname "up" tcp dport ${PORTS.hand} dnat to ${VM_IP}:22`,
      '  }',
      '}',
    ].join('\n');
    /** Each path with only its own machinery in the backend: the project's table, or the rule, or nothing. */
    const setUp: Record<Path, () => Promise<void>> = {
      dnat: () => apply(`table ip bench_hand {}\ndelete table ip bench_hand\n${renderRuleset(site, state([nic(0)]))}`),
      hand: () =>
        apply(
          `table inet ticrypt {}\ndelete table inet ticrypt\ntable ip bench_hand {}\ndelete table ip bench_hand\n${hand}\n`,
        ),
      socat: () =>
        apply('table inet ticrypt {}\ndelete table inet ticrypt\ntable ip bench_hand {}\ndelete table ip bench_hand\n'),
      node: () =>
        apply('table inet ticrypt {}\ndelete table inet ticrypt\ntable ip bench_hand {}\ndelete table ip bench_hand\n'),
    };
    await lab.spawn(backend, 'socat', [`TCP-LISTEN:${PORTS.socat},fork,reuseaddr,backlog=1024`, `TCP:${VM_IP}:22`]);
    await lab.spawn(
      backend,
      process.execPath,
      ['--import', 'tsx', new URL('node-proxy.ts', import.meta.url).pathname, VM_IP, '22', String(PORTS.node)],
      1500,
    );

    const results: Record<Path, { gbps: number[]; cps: number[]; rtt: number[]; p99: number[] }> = {
      dnat: { gbps: [], cps: [], rtt: [], p99: [] },
      hand: { gbps: [], cps: [], rtt: [], p99: [] },
      socat: { gbps: [], cps: [], rtt: [], p99: [] },
      node: { gbps: [], cps: [], rtt: [], p99: [] },
    };
    // One server at a time on the VM's port 22, each kept for every round (paths alternating within a round);
    // sockperf first: its listener does not bind over the TIME_WAIT that the others' closed connections leave on port 22.
    const measure = async (start: () => Promise<Background>, what: string, one: (path: Path) => Promise<void>) => {
      const server = await start();
      for (let round = 0; round < ROUNDS; round += 1) {
        // Each round starts at another path, so none always runs right after the same one.
        for (const path of [...PATHS.slice(round % PATHS.length), ...PATHS.slice(0, round % PATHS.length)]) {
          await setUp[path]();
          // The previous path's flows gone: both DNATs give a flow the same reply tuple (VM:22 -> client:port),
          // so one left in TIME_WAIT by the other path would clash with a new one and drop its SYN.
          await lab.run(backend, 'conntrack', ['-F']);
          await one(path);
        }
        console.error(`${what}: round ${round + 1}/${ROUNDS} done`);
      }
      await lab.stop(server);
    };
    // Round trips: sockperf's server.
    await measure(
      () => lab.sockperfServer(vm, 22),
      'round trip',
      async (path) => {
        const r = await lab.roundTrip(client, BACKEND, PORTS[path], 2);
        results[path].rtt.push(r.medianUs);
        results[path].p99.push(r.p99Us);
      },
    );
    // Throughput: iperf3's server.
    await measure(
      () => lab.spawn(vm, 'iperf3', ['-s', '-p', '22']),
      'throughput',
      async (path) => {
        const { bitsPerSecond } = await lab.iperf(client, BACKEND, PORTS[path], 4, undefined, STREAMS);
        results[path].gbps.push(bitsPerSecond / 1e9);
      },
    );
    // New connections: nginx, closing each connection after its 1-byte answer.
    await measure(
      () => lab.httpServer(vm, 22),
      'connections',
      async (path) => {
        results[path].cps.push(await lab.connectionRate(client, BACKEND, PORTS[path], 3));
        await sleep(500);
      },
    );

    const m = (path: Path) => ({
      gbps: median(results[path].gbps),
      cps: median(results[path].cps),
      rtt: median(results[path].rtt),
      p99: median(results[path].p99),
    });
    const dnat = m('dnat');
    console.log(
      `client -> backend:port -> VM:22, ${ROUNDS} rounds (medians), 2 cores shared by client, backend and VM (load average at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})`,
    );
    console.log(
      `${'path'.padEnd(24)} ${`iperf3 -P${STREAMS} Gbit/s`.padStart(18)} ${'conns/s'.padStart(9)} ${'RTT µs (p99)'.padStart(14)}   DNAT's ratio: throughput, conns/s, RTT`,
    );
    for (const path of PATHS) {
      const r = m(path);
      console.log(
        `${LABEL[path].padEnd(24)} ${r.gbps.toFixed(2).padStart(18)} ${r.cps.toFixed(0).padStart(9)} ${`${r.rtt.toFixed(0)} (${r.p99.toFixed(0)})`.padStart(14)}   ${(dnat.gbps / r.gbps).toFixed(2)}x, ${(dnat.cps / r.cps).toFixed(2)}x, ${(dnat.rtt / r.rtt).toFixed(2)}`,
      );
    }
    const proxies = [m('socat'), m('node')];
    const hands = m('hand');
    const goals = [
      [`DNAT >= 5x the proxies' throughput`, proxies.every((p) => dnat.gbps >= 5 * p.gbps)],
      [`DNAT >= 5x the proxies' connection rate`, proxies.every((p) => dnat.cps >= 5 * p.cps)],
      [`DNAT round trip lower than the proxies'`, proxies.every((p) => dnat.rtt < p.rtt)],
      [
        'DNAT within 5% of the hand-written rule (throughput, conns/s)',
        dnat.gbps >= 0.95 * hands.gbps && dnat.cps >= 0.95 * hands.cps,
      ],
    ] as const;
    for (const [goal, met] of goals) console.log(`goal: ${goal}: ${met ? 'met' : 'NOT met'}`);

    // What one forward costs: its elements added and removed, with none and with MAPPINGS present.
    const ctx = { site, domains: { before: [], after: [] } };
    const cost = async () => {
      const add: number[] = [];
      const remove: number[] = [];
      for (let i = 0; i < SAMPLES; i += 1) {
        const one = nic(MAPPINGS + 1 + i);
        const without = { registration: one.registration, entries: [] };
        add.push(await timed(() => apply(renderChange(ctx, [without], [one]))));
        remove.push(await timed(() => apply(renderChange(ctx, [one], [without]))));
      }
      return { add: median(add), remove: median(remove) };
    };
    const base = Array.from({ length: SAMPLES }, (_, i) => nic(MAPPINGS + 1 + i)).map((n) => ({
      registration: n.registration,
      entries: [],
    }));
    await apply(renderRuleset(site, { registrations: base.map((b) => b.registration), allowLists: [] }));
    const at0 = await cost();
    const many = Array.from({ length: MAPPINGS }, (_, n) => nic(n + 1));
    await apply(
      renderRuleset(site, {
        registrations: [...many.map((n) => n.registration), ...base.map((b) => b.registration)],
        allowLists: [],
        ssh: state(many).ssh,
      }),
    );
    const atN = await cost();
    console.log(
      `one forward (2 map elements): add ${at0.add.toFixed(1)} ms @0 / ${atN.add.toFixed(1)} ms @${MAPPINGS}; remove ${at0.remove.toFixed(1)} / ${atN.remove.toFixed(1)} ms; ratio ${(atN.add / at0.add).toFixed(2)} / ${(atN.remove / at0.remove).toFixed(2)}`,
    );
    const ok = atN.add <= 1.5 * at0.add && atN.remove <= 1.5 * at0.remove;
    console.log(`goal: adding or removing one forward at ${MAPPINGS} <= 1.5x at 0: ${ok ? 'met' : 'NOT met'}`);
  } finally {
    await lab.remove();
  }
}

await main();
