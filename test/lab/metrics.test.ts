/**
 * Issue 16's monitoring, against the real service (backend-lab.ts): traffic of
 * a known count moves exactly the data-plane counters `/metrics` shows. A
 * secure VM sends 50 pings its allow-list admits (50 echo requests forwarded
 * out, 50 replies forwarded back, one flow) and 30 to an address it does not
 * admit (30 drops, reason egress); a VM that was never registered sends 20
 * (20 drops, reason unregistered). The positive control: the 50 pings are
 * answered, the 30 and 20 are not. Registered VMs per network and per host
 * are the ones registered. On the host side, `doctor --role host --json`
 * shows a VM port (tagged as libvirt tags it) with its VM and its counters
 * moving by the pings it carried.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNetwork } from '../../src/site/lookup.js';
import { API_IP, API_URL, BackendLab, labUuid } from './backend-lab.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';
import { configure } from './probes.js';
import { CLI } from './service.js';
import type { VmPortCounters } from '../../src/host/port-counters.js';

const available = labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'conntrack', 'ip', 'ping', 'ethtool', 'perl');

const ALLOWED = '203.0.113.10';
const OTHER = '203.0.113.20';
const ACCEPTED_PINGS = 50;
const REFUSED_PINGS = 30;
const UNREGISTERED_PINGS = 20;

const VMS = {
  a: { network: 'secure', mac: '52:54:00:e0:00:01', vm: labUuid(0xe1) },
  b: { network: 'secure', mac: '52:54:00:e0:00:02', vm: labUuid(0xe2) },
  c: { network: 'secure', mac: '52:54:00:e0:00:03', vm: undefined },
} as const;
type VmName = keyof typeof VMS;

/** The value of one series in a Prometheus exposition (undefined when absent). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.skipIf(!available)('data-plane metrics of the real service (lab)', () => {
  let built: BackendLab<VmName> | undefined;
  const lab = (): BackendLab<VmName> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const scrape = async (): Promise<string> => {
    const response = await fetch(`${API_URL}/metrics`, {
      headers: { authorization: `Bearer ${lab().tokens.prometheus ?? ''}` },
    });
    expect(response.status).toBe(200);
    return response.text();
  };
  /** Scrape until every series has its expected value (the snapshot is refreshed in the background), at most `ms`. */
  const scrapeUntil = async (expected: Record<string, number>, ms = 40_000): Promise<string> => {
    const deadline = Date.now() + ms;
    let text = await scrape();
    while (Date.now() < deadline && Object.entries(expected).some(([s, v]) => sample(text, s) !== v)) {
      await sleep(500);
      text = await scrape();
    }
    return text;
  };
  const pings = async (name: VmName, to: string, count: number): Promise<number> => {
    const args = [
      'netns',
      'exec',
      lab().vm[name].name,
      'ping',
      '-c',
      String(count),
      '-i',
      '0.02',
      '-W',
      '1',
      '-n',
      '-q',
      to,
    ];
    const result = await execa('ip', args, { reject: false, timeout: 30_000 });
    return Number(/(\d+) received/.exec(String(result.stdout))?.[1] ?? 0);
  };

  beforeAll(async () => {
    built = await BackendLab.create(runPrefix(), {
      site: { networks: { secure: { preset: 'secure' }, service: { preset: 'service' } } },
      vms: VMS,
      internet: [`${ALLOWED}/24`, `${OTHER}/24`],
      tokens: { 'kvm-1': [], 'kvm-2': [], ops: ['--admin'], prometheus: ['--metrics'] },
    });
    // A management link another run left behind (same 198.18.0.0/24) must not catch the API's traffic: ours wins.
    await execa('ip', ['route', 'replace', `${API_IP}/32`, 'dev', `${built.prefix}m0`]);
    await built.startService();
    const secure = findNetwork(built.site, 'secure');
    const prefix = secure.subnet.split('/')[1];
    const ipA = await built.register('a', 1, 'kvm-1');
    const ipB = await built.register('b', 1, 'kvm-2');
    await configure(built.vm.a, 'eth0', `${ipA}/${prefix}`, secure.gateway);
    await configure(built.vm.b, 'eth0', `${ipB}/${prefix}`, secure.gateway);
    await configure(built.vm.c, 'eth0', `192.168.200.200/${prefix}`, secure.gateway);
    await built.allow('a', [{ address: ALLOWED, protocol: 'any' }]);
  }, 120_000);

  afterAll(async () => {
    if (built !== undefined) {
      await execa('ip', ['route', 'del', `${API_IP}/32`, 'dev', `${built.prefix}m0`], { reject: false });
    }
    await built?.remove();
  }, 60_000);

  it('counts accepted packets and bytes each way, flows, and drops by reason, exactly', async () => {
    const before = await scrape();
    const series = {
      from: 'ticrypt_accepted_packets_total{network="secure",direction="from_vms"}',
      to: 'ticrypt_accepted_packets_total{network="secure",direction="to_vms"}',
      fromBytes: 'ticrypt_accepted_bytes_total{network="secure",direction="from_vms"}',
      flows: 'ticrypt_flows_total{network="secure",direction="from_vms"}',
      egress: 'ticrypt_dropped_packets_total{network="secure",reason="egress"}',
      egressBytes: 'ticrypt_dropped_bytes_total{network="secure",reason="egress"}',
      unregistered: 'ticrypt_dropped_packets_total{network="secure",reason="unregistered"}',
      serviceEgress: 'ticrypt_dropped_packets_total{network="service",reason="egress"}',
    };
    const at = (text: string) =>
      Object.fromEntries(Object.entries(series).map(([k, s]) => [k, sample(text, s) ?? Number.NaN])) as Record<
        keyof typeof series,
        number
      >;
    const start = at(before);
    expect(Object.values(start).every(Number.isFinite), before).toBe(true);

    // Positive control first: the allowed pings are answered, the others are not.
    expect(await pings('a', ALLOWED, ACCEPTED_PINGS)).toBe(ACCEPTED_PINGS);
    expect(await pings('a', OTHER, REFUSED_PINGS)).toBe(0);
    expect(await pings('c', ALLOWED, UNREGISTERED_PINGS)).toBe(0);

    // An echo request is 84 bytes at the IP layer (20 + 8 + 56), as nft counts it in inet.
    const expected = {
      from: start.from + ACCEPTED_PINGS,
      to: start.to + ACCEPTED_PINGS,
      fromBytes: start.fromBytes + ACCEPTED_PINGS * 84,
      flows: start.flows + 1,
      egress: start.egress + REFUSED_PINGS,
      egressBytes: start.egressBytes + REFUSED_PINGS * 84,
      unregistered: start.unregistered + UNREGISTERED_PINGS,
      serviceEgress: start.serviceEgress,
    };
    const after = await scrapeUntil(
      Object.fromEntries(Object.entries(expected).map(([k, v]) => [series[k as keyof typeof series], v])),
    );
    expect(at(after)).toEqual(expected);
  });

  it('shows registered VMs per network and per host, and the conntrack fill', async () => {
    const text = await scrapeUntil({
      'ticrypt_registered_vms{network="secure"}': 2,
      'ticrypt_host_registered_vms{host="kvm-1"}': 1,
      'ticrypt_host_registered_vms{host="kvm-2"}': 1,
    });
    expect(sample(text, 'ticrypt_registered_vms{network="secure"}')).toBe(2);
    expect(sample(text, 'ticrypt_registered_vms{network="service"}')).toBe(0);
    expect(sample(text, 'ticrypt_host_registrations{host="kvm-1"}')).toBe(1);
    expect(sample(text, 'ticrypt_host_registered_vms{host="kvm-2"}')).toBe(1);
    expect(sample(text, 'ticrypt_conntrack_max')).toBeGreaterThan(0);
    expect(sample(text, 'ticrypt_conntrack_entries')).toBeGreaterThan(0);
    expect(sample(text, 'ticrypt_dataplane_read_errors_total{source="nft"}') ?? 0).toBe(0);
  });

  it("shows a VM port's counters moving in the host's doctor --json, with its VM", async () => {
    const port = `${lab().prefix}a`;
    // What libvirt writes on a VM's OVS interface.
    await execa('ovs-vsctl', [
      'set',
      'Interface',
      port,
      `external_ids:attached-mac=${VMS.a.mac}`,
      `external_ids:vm-id=${VMS.a.vm}`,
    ]);
    const doctor = async (): Promise<VmPortCounters> => {
      const args = [
        'doctor',
        '--role',
        'host',
        '--json',
        '--hooks-dir',
        '/nonexistent',
        '--hook-config',
        '/nonexistent',
      ];
      const result = await execa(process.execPath, [CLI, ...args], { reject: false, timeout: 60_000 });
      const found = (JSON.parse(String(result.stdout)) as { vmPorts?: VmPortCounters[] }).vmPorts?.find(
        (p) => p.port === port,
      );
      if (found === undefined)
        throw new Error(`doctor --json shows no VM port ${port}: ${String(result.stdout).slice(0, 300)}`);
      return found;
    };
    const before = await doctor();
    expect(before).toMatchObject({ mac: VMS.a.mac, vmUuid: VMS.a.vm });
    expect(await pings('a', ALLOWED, 20)).toBe(20);
    // ovs-vswitchd refreshes interface statistics in ovsdb every 5 s.
    let after = await doctor();
    for (let tries = 0; tries < 30 && after.rx.packets - before.rx.packets < 20; tries += 1) {
      await sleep(500);
      after = await doctor();
    }
    expect(after.rx.packets - before.rx.packets).toBeGreaterThanOrEqual(20);
    expect(after.tx.packets - before.tx.packets).toBeGreaterThanOrEqual(20);
    expect(after.rx.bytes - before.rx.bytes).toBeGreaterThanOrEqual(20 * 98);
  }, 90_000);
});
