/**
 * The gateway's data path with the table full: a registered secure VM's
 * forwarded throughput (iperf3 TCP) and packet rate (iperf3 UDP, 64-byte
 * datagrams) to a server its allow-list names, and a service VM's masqueraded
 * throughput, each with 0 and with VMS other registered VMs x 20 allow entries
 * (and an SSH forward each) in table inet ticrypt, in one run, alternating.
 * Needs root and iperf3.
 *
 *     node --import tsx bench/datapath.ts [ROUNDS] [VMS]
 *
 *     secure VM 192.168.129.10 ── gsec ┐
 *                                       backend ── up 203.0.113.1 ── 203.0.113.10 server (iperf3 5201)
 *     service VM 192.168.122.10 ── gsvc ┘
 */
import { nftRunner, renderRuleset } from '../src/backend/nft/index.js';
import type { AllowList, Registration } from '../src/protocol/api.js';
import { parseSite } from '../src/site/parse.js';
import { entries, vm } from './fixtures.js';
import { median, NetLab } from './netlab.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[0] ?? 3);
const VMS = Number(args[1] ?? 10_000);
const SERVER = '203.0.113.10';
const SECURE = { ip: '192.168.129.10', mac: '52:54:00:aa:00:01' };
const SERVICE = { ip: '192.168.122.10', mac: '52:54:00:aa:00:02' };

const site = parseSite({
  backend: { uplink: 'up' },
  networks: {
    secure: { preset: 'secure', gatewayInterface: 'gsec' },
    service: { preset: 'service', gatewayInterface: 'gsvc' },
  },
});

function registration(n: number, network: string, ip: string, mac: string): Registration {
  return { ...vm(n), hostId: 'bench', network, ip, mac, generation: 1, nicId: n + 1 };
}

/** The table with the two measured VMs and `count` other secure VMs (20 entries and an SSH forward each). */
function table(count: number): string {
  const measured = [
    registration(1_000_000, 'secure', SECURE.ip, SECURE.mac),
    registration(1_000_001, 'service', SERVICE.ip, SERVICE.mac),
  ];
  const others = Array.from({ length: count }, (_, n) =>
    registration(n, 'secure', `192.168.${130 + (n >> 8)}.${n & 255}`, vm(n).mac),
  );
  const allowLists: AllowList[] = [
    {
      vmUuid: measured[0]!.vmUuid,
      entries: [
        { type: 'address', address: SERVER, protocol: 'tcp', ports: { from: 5201, to: 5201 } },
        { type: 'address', address: SERVER, protocol: 'udp', ports: { from: 5201, to: 5201 } },
      ],
    },
    ...others.map((r, n) => ({ vmUuid: r.vmUuid, entries: entries(n) })),
  ];
  const ssh = others.map((r, n) => ({
    network: 'secure',
    mac: r.mac,
    port: 22000 + n,
    sources: ['0.0.0.0/0'],
    narrowed: false,
  }));
  return renderRuleset(site, { registrations: [...measured, ...others], allowLists, ssh });
}

async function main(): Promise<void> {
  const lab = new NetLab();
  try {
    const backend = await lab.netns('backend');
    const internet = await lab.netns('internet');
    const secure = await lab.netns('secure');
    const service = await lab.netns('service');
    await lab.link(
      { ns: backend, name: 'up', addresses: ['203.0.113.1/24'] },
      { ns: internet, name: 'eth0', addresses: [`${SERVER}/24`] },
    );
    await lab.link(
      { ns: backend, name: 'gsec', addresses: ['192.168.128.1/17'] },
      { ns: secure, name: 'eth0', addresses: [`${SECURE.ip}/17`], mac: SECURE.mac },
    );
    await lab.link(
      { ns: backend, name: 'gsvc', addresses: ['192.168.122.1/24'] },
      { ns: service, name: 'eth0', addresses: [`${SERVICE.ip}/24`], mac: SERVICE.mac },
    );
    await lab.run(secure, 'ip', ['route', 'add', 'default', 'via', '192.168.128.1']);
    await lab.run(service, 'ip', ['route', 'add', 'default', 'via', '192.168.122.1']);
    await lab.run(internet, 'ip', ['route', 'add', '192.168.128.0/17', 'via', '203.0.113.1']);
    await lab.run(backend, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await lab.spawn(internet, 'iperf3', ['-s', '-p', '5201']);
    const apply = nftRunner({ netns: backend, timeout: 600_000 });
    const tables = { 0: table(0), [VMS]: table(VMS) } as Record<number, string>;

    const runs: Record<number, { tcp: number[]; pps: number[]; masq: number[] }> = {
      0: { tcp: [], pps: [], masq: [] },
      [VMS]: { tcp: [], pps: [], masq: [] },
    };
    let loadMs = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const count of [0, VMS]) {
        const started = Date.now();
        await apply(tables[count]!);
        if (count === VMS) loadMs = Date.now() - started;
        runs[count]!.tcp.push((await lab.iperf(secure, SERVER, 5201, 4)).bitsPerSecond / 1e9);
        runs[count]!.pps.push((await lab.iperf(secure, SERVER, 5201, 4, { length: 64 })).packetsPerSecond / 1e3);
        runs[count]!.masq.push((await lab.iperf(service, SERVER, 5201, 4)).bitsPerSecond / 1e9);
      }
      console.error(`round ${round + 1}/${ROUNDS} done`);
    }
    const at = (count: number) => ({
      tcp: median(runs[count]!.tcp),
      pps: median(runs[count]!.pps),
      masq: median(runs[count]!.masq),
    });
    const [empty, full] = [at(0), at(VMS)];
    console.log(
      `${ROUNDS} rounds (medians); the full table: ${VMS} secure VMs x 20 entries + an SSH forward each (loaded in ${loadMs} ms)`,
    );
    const row = (what: string, a: number, b: number, unit: string) => {
      console.log(
        `${what.padEnd(40)} ${a.toFixed(2)} ${unit} @0 | ${b.toFixed(2)} ${unit} @${VMS} | ratio ${(b / a).toFixed(2)}`,
      );
      return b / a;
    };
    const ratios = [
      row('secure VM -> allowed server, TCP', empty.tcp, full.tcp, 'Gbit/s'),
      row('secure VM -> allowed server, UDP 64 B', empty.pps, full.pps, 'kpps'),
      row('service VM -> internet, masqueraded TCP', empty.masq, full.masq, 'Gbit/s'),
    ];
    console.log(`goal: >= 0.9x with the full table: ${ratios.every((r) => r >= 0.9) ? 'met' : 'NOT met'}`);
  } finally {
    await lab.remove();
  }
}

await main();
