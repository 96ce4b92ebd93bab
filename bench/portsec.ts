/**
 * Port security's two costs, with the real Open vSwitch (netdev datapath):
 *
 * 1. Installing and removing one VM port's program (one `ovs-ofctl --bundle`
 *    each, as the hook does it: `--no-names`, exact cookie, the hook's
 *    runner) on a bridge with 1 other program vs with 1,000 (21,000 flows),
 *    the two bridges measured in turn. Goal: ratio <= 1.5.
 * 2. TCP throughput (iperf3, VM namespace to gateway namespace, through the
 *    bridge) with the port unpinned (fail_mode standalone, no flows: NORMAL)
 *    and pinned (`gateway` and `all`), the modes interleaved round by round.
 *    Goal: pinned / unpinned >= 0.9 (medians).
 *
 * Needs root and the lab lock (`flock -o /work/lab.lock`); every bridge and
 * namespace it makes is removed at the end.
 *
 *     node --import tsx bench/portsec.ts [ROUNDS] [IPERF_SECONDS]
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { lightRunner } from '../src/exec/light-run.js';
import { bundleArgs } from '../src/portsec/ovs.js';
import {
  bundleText,
  renderBridgeProgram,
  renderPortProgram,
  type PeersPolicy,
  type PortSpec,
} from '../src/portsec/render.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[0] ?? 40);
const IPERF_SECONDS = Number(args[1] ?? 4);
const PINNED = 1000;
const p = `b${randomBytes(2).toString('hex')}`;
const run = lightRunner(() => 30_000);
const vsctl = (...a: string[]) => execa('ovs-vsctl', ['--timeout=10', ...a]);
const inNs = (ns: string, ...a: string[]) => execa('ip', ['netns', 'exec', ns, ...a]);

const GW = { ip: '192.168.128.1', mac: '52:54:00:ff:00:01' };
const VM = { ip: '192.168.129.10', mac: '52:54:00:00:00:0a' };

function port(ofport: number, peers: PeersPolicy = 'gateway', uplink = 1): PortSpec {
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  return {
    ofport,
    mac: ofport === 2 ? VM.mac : `52:54:00:01:${hex(ofport >> 8)}:${hex(ofport & 255)}`,
    ip: ofport === 2 ? VM.ip : `192.168.${130 + (ofport >> 8)}.${ofport & 255}`,
    tag: 1081,
    peers,
    ipv6: 'off',
    gatewayIp: GW.ip,
    gatewayMac: GW.mac,
    uplink: { ofport: uplink, tagged: false },
  };
}

async function bundle(bridge: string, text: string): Promise<number> {
  const start = process.hrtime.bigint();
  const result = await run('ovs-ofctl', bundleArgs(bridge, 10_000), { input: text });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.exitCode !== 0) throw new Error(`ovs-ofctl on ${bridge}: ${result.stderr}`);
  return ms;
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function installRemove(): Promise<boolean> {
  const small = `${p}s`;
  const large = `${p}l`;
  for (const bridge of [small, large]) {
    await vsctl('add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=netdev', 'fail_mode=secure');
  }
  // One other program on the small bridge, a thousand on the large one (flows only: no ports needed).
  await bundle(
    small,
    bundleText([
      { install: renderBridgeProgram({ peers: 'gateway', passPorts: [] }) },
      { install: renderPortProgram(port(100)) },
    ]),
  );
  const many = Array.from({ length: PINNED }, (_, i) => ({ install: renderPortProgram(port(1000 + i)) }));
  const loadMs = await bundle(
    large,
    bundleText([{ install: renderBridgeProgram({ peers: 'gateway', passPorts: [] }) }, ...many]),
  );
  const flows = (await execa('ovs-ofctl', ['-O', 'OpenFlow14', '--no-names', 'dump-aggregate', large])).stdout;
  const program = renderPortProgram(port(7));
  const install = bundleText([{ install: program }]);
  const remove = bundleText([{ remove: { kind: 'port', ident: 7 } }]);
  const times = {
    small: { install: [] as number[], remove: [] as number[] },
    large: { install: [] as number[], remove: [] as number[] },
  };
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, bridge] of (i % 2
      ? [
          ['large', large],
          ['small', small],
        ]
      : [
          ['small', small],
          ['large', large],
        ]) as ['small' | 'large', string][]) {
      times[name].install.push(await bundle(bridge, install));
      times[name].remove.push(await bundle(bridge, remove));
    }
  }
  console.log(
    `install/remove one port's program (${program.flows.length + 1} flows, one bundle each, ${ROUNDS} rounds, bridges in turn); ` +
      `${PINNED} programs loaded in one bundle in ${loadMs.toFixed(0)} ms (${/flow_count=(\d+)/.exec(flows)?.[1] ?? '?'} flows)`,
  );
  let worst = 0;
  for (const what of ['install', 'remove'] as const) {
    const a = median(times.small[what]);
    const b = median(times.large[what]);
    worst = Math.max(worst, b / a);
    console.log(
      `  ${what.padEnd(7)} median ${a.toFixed(2)} ms with 1 pinned | ${b.toFixed(2)} ms with ${PINNED} pinned | ratio ${(b / a).toFixed(2)}`,
    );
  }
  console.log(`  goal (ratio <= 1.5): ${worst <= 1.5 ? 'met' : 'NOT met'}`);
  return worst <= 1.5;
}

async function throughput(): Promise<boolean> {
  const bridge = `${p}t`;
  const [gw, vm] = [`${p}-gw`, `${p}-vm`];
  await vsctl('add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=netdev');
  for (const [ns, host, mac, ip] of [
    [gw, `${p}g`, GW.mac, GW.ip],
    [vm, `${p}v`, VM.mac, VM.ip],
  ] as const) {
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await execa('ethtool', ['-K', host, 'tx', 'off']);
    await inNs(ns, 'ethtool', '-K', 'eth0', 'tx', 'off');
    await inNs(ns, 'ip', 'link', 'set', 'eth0', 'address', mac);
    await inNs(ns, 'ip', 'addr', 'add', `${ip}/17`, 'dev', 'eth0');
    await execa('ip', ['link', 'set', host, 'up']);
    await inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
    await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  // The gateway's leg is the uplink (ofport 1), the VM's port ofport 2 (as libvirt makes it).
  await vsctl('add-port', bridge, `${p}g`, 'tag=1081', '--', 'set', 'interface', `${p}g`, 'ofport_request=1');
  await vsctl(
    ...['add-port', bridge, `${p}v`, 'tag=1081', '--', 'set', 'interface', `${p}v`, 'ofport_request=2'],
    `external_ids:attached-mac="${VM.mac}"`,
  );
  const server = execa('ip', ['netns', 'exec', gw, 'iperf3', '-s'], { reject: false });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const mode = async (m: 'unpinned' | PeersPolicy) => {
    // fail_mode changes flush the bridge's flows (OVS does, without a controller): set it first.
    await vsctl('set', 'bridge', bridge, `fail_mode=${m === 'unpinned' ? 'standalone' : 'secure'}`);
    await execa('ovs-ofctl', ['-O', 'OpenFlow14', 'del-flows', bridge, 'cookie=0x7c4e000000000000/0xffff000000000000']);
    if (m !== 'unpinned') {
      await bundle(
        bridge,
        bundleText([
          {
            install: renderBridgeProgram({
              peers: m,
              gatewayMac: GW.mac,
              uplink: { ofport: 1, tagged: false },
              passPorts: [1],
            }),
          },
          { install: renderPortProgram(port(2, m)) },
        ]),
      );
    }
    const out = await inNs(vm, 'iperf3', '-c', GW.ip, '-t', String(IPERF_SECONDS), '-J');
    return (JSON.parse(out.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
      .bits_per_second;
  };
  const modes = ['unpinned', 'gateway', 'all'] as const;
  const rates: Record<(typeof modes)[number], number[]> = { unpinned: [], gateway: [], all: [] };
  const rounds = Math.max(5, Math.min(ROUNDS, 7));
  try {
    for (let i = 0; i < rounds; i++) {
      // Rotate the order, so no mode always follows another.
      for (let j = 0; j < modes.length; j++) {
        const m = modes[(i + j) % modes.length]!;
        rates[m].push(await mode(m));
      }
    }
  } finally {
    server.kill('SIGTERM');
    await server;
  }
  const gbit = (bps: number) => `${(bps / 1e9).toFixed(2)} Gbit/s`;
  const base = median(rates.unpinned);
  console.log(
    `iperf3 TCP VM -> gateway through the bridge, ${IPERF_SECONDS} s each, ${rounds} rounds, modes interleaved (medians):`,
  );
  console.log(`  unpinned (standalone, NORMAL) ${gbit(base)}`);
  let worst = Infinity;
  for (const m of ['gateway', 'all'] as const) {
    const ratio = median(rates[m]) / base;
    worst = Math.min(worst, ratio);
    console.log(
      `  pinned, peers ${m.padEnd(7)}       ${gbit(median(rates[m]))}  ratio ${ratio.toFixed(2)}   (rounds: ${rates[m].map((r) => (r / 1e9).toFixed(2)).join(' ')})`,
    );
  }
  console.log(`  (unpinned rounds: ${rates.unpinned.map((r) => (r / 1e9).toFixed(2)).join(' ')})`);
  console.log(`  goal (ratio >= 0.9): ${worst >= 0.9 ? 'met' : 'NOT met'}`);
  return worst >= 0.9;
}

try {
  await installRemove();
  await throughput();
} finally {
  for (const bridge of [`${p}s`, `${p}l`, `${p}t`]) await vsctl('--if-exists', 'del-br', bridge).catch(() => {});
  for (const link of [`${p}g`, `${p}v`]) await execa('ip', ['link', 'del', link], { reject: false });
  for (const ns of [`${p}-gw`, `${p}-vm`]) await execa('ip', ['netns', 'del', ns], { reject: false });
}
