/**
 * Issue 3's acceptance, against the real programs (see backend-lab.ts for the
 * set-up): `ticrypt-net backend serve` (built CLI) in a "backend" namespace
 * runs table inet ticrypt, one dnsmasq per network and the DNS front; VM
 * namespaces sit on one Open vSwitch bridge (netdev datapath) on access ports
 * tagged with their network's VLAN, as VM NICs do on
 * br-secure/br-service/br-datain; an "internet" namespace behind the
 * backend's uplink holds two TCP servers and a resolver. The test, in the root
 * namespace, calls the API over a management veth. Where a real VM adds truth
 * (its own resolver, DHCP client, wget and nc; a forger's ARP), real Linux
 * guests booted by libvirtd (test/lab/guest) sit on the same bridge.
 *
 *     sa, sb, sc (1081) ─┐                        ┌─ g1 (1081) ─┐
 *     sv (1082) ─────────┤                        │             │
 *     di (1083) ─────────┼── OVS bridge <p>br ────┼─ g2 (1082) ─┼ backend ── up ═══ eth0 internet
 *     guests gs, gf (1081)                        └─ g3 (1083) ─┘   │          203.0.113.10 (server 1: 443, 80; http 8080)
 *     guest gv (1082) ───┘                           root 198.18.0.2 ─ m1 198.18.0.1 (API)   203.0.113.20 (server 2: 443; http 8080)
 *                                                                                          198.51.100.53 (resolver)
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNetwork } from '../../src/site/lookup.js';
import type { Network, Site } from '../../src/site/model.js';
import { BASE_NIC, PLACEMENTS, REFUSALS, type Refusal } from '../backend/api/refusals.js';
import { API_IP, API_PORT, API_URL as URL, BackendLab, labUuid as uuid, RESOLVER, UPLINK_IPS } from './backend-lab.js';
import { announce, forge } from './guest/forger.js';
import { type Guest, Guests } from './guest/guest.js';
import { runPrefix } from './names.js';
import type { Netns } from './netns.js';
import { labAvailable } from './prereq.js';
import { configure, dhcpLease, dig, tcpProbe, TcpStream } from './probes.js';
import type { ProcInfo } from './service.js';

const available = labAvailable(
  'ovs-vsctl',
  'nft',
  'dnsmasq',
  'busybox',
  'dig',
  'socat',
  'conntrack',
  'ip',
  'ethtool',
  'perl',
  'virsh',
  'qemu-system-x86_64',
);

const S1 = '203.0.113.10';
const S2 = '203.0.113.20';
/** The backend's uplink address toward the servers: what they see when VM traffic is masqueraded. */
const UPLINK_IP = UPLINK_IPS[0];
/** The lab's token names for the refusals' kinds of token. */
const AUTH: Record<Refusal['auth'], string> = {
  host: 'kvm-1',
  'other-host': 'kvm-2',
  admin: 'ops',
  metrics: 'prometheus',
  forged: 'forged',
  malformed: 'malformed',
  none: 'none',
};

/** The lab's "internet" is TEST-NET, a special-use range: domain entries name it, or the DNS front opens nothing. */
const TEST_NET = ['203.0.113.0/24'];
/** The VM namespaces: name suffix, network, VLAN, MAC, VM UUID (undefined: never registered). */
const VMS = {
  a: { network: 'secure', vlan: 1081, mac: '52:54:00:a0:00:01', vm: uuid(0xa1) },
  b: { network: 'secure', vlan: 1081, mac: '52:54:00:a0:00:02', vm: uuid(0xa2) },
  c: { network: 'secure', vlan: 1081, mac: '52:54:00:a0:00:03', vm: undefined },
  sv: { network: 'service', vlan: 1082, mac: '52:54:00:a0:00:04', vm: uuid(0xa4) },
  di: { network: 'datain', vlan: 1083, mac: '52:54:00:a0:00:05', vm: uuid(0xa5) },
} as const;
type VmName = keyof typeof VMS;
/** The real guests: a secure VM, a secure VM that turns forger, a service VM. */
const GUESTS = {
  gs: { network: 'secure', vlan: 1081, mac: '52:54:00:a0:00:11', vm: uuid(0xc1) },
  gf: { network: 'secure', vlan: 1081, mac: '52:54:00:a0:00:12', vm: uuid(0xc2) },
  gv: { network: 'service', vlan: 1082, mac: '52:54:00:a0:00:14', vm: uuid(0xc4) },
} as const;
type GuestName = keyof typeof GUESTS;

describe.skipIf(!available)('backend gateway: the service, nftables and dnsmasq with real traffic (lab)', () => {
  const p = runPrefix();
  let built: BackendLab<VmName, GuestName> | undefined;
  const streams: TcpStream[] = [];
  let site: Site;
  let secure: Network;
  let backend: Netns;
  let vm: Record<VmName, Netns>;
  /** The address the API answered for each registered VM. */
  const ips = {} as Record<VmName, string>;
  let guests: Guests | undefined;
  const guest = {} as Record<GuestName, Guest>;

  const lab = (): BackendLab<VmName, GuestName> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const call = (method: string, path: string, auth: Refusal['auth'], body?: unknown, raw?: string) =>
    lab().call(method, path, AUTH[auth], body, raw);

  /** The VM launcher's call: the VM may run on these hosts. */
  const place = (vmUuid: string, hosts: readonly string[]) => lab().place(vmUuid, hosts);
  /** Place a VM (or guest) on kvm-1, which registers it: its address. */
  const register = (name: VmName | GuestName, generation = 1) => lab().register(name, generation);
  const allow = (name: VmName | GuestName, entries: unknown[]) => lab().allow(name, entries);

  /** The keys of the `nic_ids` map (the registered NICs), as `ifname . mac . ip`. */
  async function registeredSet(): Promise<string[]> {
    const { stdout } = await backend.run('nft', ['-j', 'list', 'map', 'inet', 'ticrypt', 'nic_ids']);
    const map = (
      JSON.parse(stdout) as { nftables: { map?: { elem?: [{ concat: string[] }, number][] } }[] }
    ).nftables.find((item) => item.map)?.map;
    return (map?.elem ?? []).map(([key]) => key.concat.join(' . ')).sort();
  }

  beforeAll(async () => {
    built = await BackendLab.create(p, {
      site: {
        backend: { upstreamDns: [RESOLVER] },
        networks: { secure: { preset: 'secure' }, service: { preset: 'service' }, datain: { preset: 'datain' } },
      },
      vms: VMS,
      guests: GUESTS,
      internet: [`${S1}/24`, `${S2}/24`, `${RESOLVER}/24`],
      // The internet: two servers that tell each connection where it came from, and a resolver.
      servers: [`${S1}:443`, `${S1}:80`, `${S2}:443`, `http:${S1}:8080`, `http:${S2}:8080`],
      resolver: [`address=/allowed.example/${S1}`, `address=/other.example/${S2}`],
      tokens: { 'kvm-1': [], 'kvm-2': [], ops: ['--admin'], prometheus: ['--metrics'] },
    });
    ({ site, backend, vm } = built);
    secure = findNetwork(site, 'secure');
    await built.startService();
  });

  afterAll(async () => {
    await guests?.destroyAll();
    for (const stream of streams) await stream.close();
    await built?.remove();
  });

  it('gives registered VMs their reserved IP by DHCP, and an unregistered VM no lease', async () => {
    for (const name of ['a', 'b', 'sv', 'di'] as const) ips[name] = await register(name);
    await allow('a', [
      { address: S1, protocol: 'tcp', ports: 443 },
      { domain: 'allowed.example', protocol: 'tcp', ports: 443, specialRanges: TEST_NET },
    ]);
    await allow('b', [{ address: S1, protocol: 'tcp', ports: 80 }]);
    const leases = await Promise.all(
      (['a', 'b', 'sv', 'di', 'c'] as const).map((name) => dhcpLease(vm[name], 'eth0', name === 'c' ? 3 : 5)),
    );
    expect(leases).toEqual([ips.a, ips.b, ips.sv, ips.di, undefined]);
    expect(ips.a).toMatch(/^192\.168\.(129|1[3-9]\d|2[0-5]\d)\.\d+$/);
    for (const name of ['a', 'b', 'sv', 'di'] as const) {
      const network = findNetwork(site, VMS[name].network);
      await configure(vm[name], 'eth0', `${ips[name]}/${network.subnet.split('/')[1]}`, network.gateway);
    }
    // The unregistered VM takes an address of its own choosing.
    await configure(vm.c, 'eth0', '192.168.200.200/17', secure.gateway);
  });

  it('boots real guests on the bridge; each registered one leases its reserved address', async () => {
    guests = new Guests(lab().work);
    const reserved = {} as Record<GuestName, string>;
    for (const name of Object.keys(GUESTS) as GuestName[]) reserved[name] = await register(name);
    await allow('gs', [
      { address: S1, protocol: 'tcp', ports: 443 },
      { domain: 'allowed.example', protocol: 'tcp', ports: 8080, specialRanges: TEST_NET },
    ]);
    await allow('gf', [{ address: S1, protocol: 'tcp', ports: 80 }]);
    const booted = await Promise.all(
      (Object.keys(GUESTS) as GuestName[]).map((name) =>
        guests!.boot({
          name: `${p}${name}`,
          nic: { mac: GUESTS[name].mac, bridge: `${p}br`, vlan: GUESTS[name].vlan },
        }),
      ),
    );
    for (const [i, name] of (Object.keys(GUESTS) as GuestName[]).entries()) guest[name] = booted[i]!;
    expect(booted.map((g) => g.ip)).toEqual(Object.values(reserved));
  });

  it('lets a secure guest reach only its allow-list, by name through its own resolver (nslookup, wget, nc)', async () => {
    const r = await guest.gs.runAll({
      resolvers: 'cat /etc/resolv.conf',
      allowed: 'nslookup -type=a allowed.example',
      other: 'nslookup -type=a other.example',
      elsewhere: 'nslookup -type=a example.com',
      direct: `timeout 3 nslookup -type=a allowed.example ${RESOLVER}`,
      // A tunnel: data in a label below an allowed name, asked as TXT.
      tunnel: 'timeout 3 nslookup -type=txt 7365637265742d64617461.allowed.example',
      byName: 'timeout 5 wget -q -O- http://allowed.example:8080/',
      byAddress: `echo | timeout 5 nc ${S1} 443`,
      otherPort: `echo | timeout 3 nc ${S1} 80`,
      otherServer: `echo | timeout 3 nc ${S2} 443`,
      otherName: 'timeout 3 wget -q -O- http://other.example:8080/',
      otherAddress: `timeout 3 wget -q -O- http://${S2}:8080/`,
    });
    // Its resolver is the one DHCP named: the backend, which answers allowed names only.
    expect(r.resolvers.output).toContain(`nameserver ${secure.gateway}`);
    expect(r.allowed.output).toContain(`Address: ${S1}`);
    expect([r.other.output, r.elsewhere.output]).toEqual([
      expect.stringContaining('NXDOMAIN'),
      expect.stringContaining('NXDOMAIN'),
    ]);
    expect(r.direct.exitCode).not.toBe(0);
    // The DNS front refuses the TXT question: it never reaches the resolver, whose log has the allowed name only.
    expect(r.tunnel.output).not.toContain('text =');
    const asked = await lab().resolverQueries();
    expect(asked.filter((line) => line.includes('7365637265742d64617461'))).toEqual([]);
    expect(asked.some((line) => line.includes('query[A] allowed.example'))).toBe(true);
    // What it may reach answers, masqueraded; nothing else arrives.
    expect([r.byName.output.trim(), r.byAddress.output.split('\n')[0]]).toEqual([UPLINK_IP, UPLINK_IP]);
    const refused = [r.otherPort, r.otherServer, r.otherName, r.otherAddress];
    expect(refused.map((x) => x.exitCode !== 0 && !x.output.includes(UPLINK_IP))).toEqual([true, true, true, true]);
    // The resolver does answer the backend: the drop of the direct query is the firewall's.
    expect(await dig(backend, RESOLVER, 'other.example')).toEqual({ status: 'NOERROR', answers: [S2] });
  });

  it('lets a secure VM reach only its address entries: a second VM, another port', async () => {
    const [b80, b443] = await Promise.all([tcpProbe(vm.b, S1, 80), tcpProbe(vm.b, S1, 443)]);
    expect(b80).toEqual({ outcome: 'connected', firstLine: UPLINK_IP });
    expect(b443.outcome).toBe('timeout');
  });

  it('lets a service guest reach the internet freely, with open DNS', async () => {
    const r = await guest.gv.runAll({
      other: 'nslookup -type=a other.example',
      byName: 'timeout 5 wget -q -O- http://other.example:8080/',
      s1: `echo | timeout 5 nc ${S1} 80`,
      s2: `echo | timeout 5 nc ${S2} 443`,
    });
    expect(r.other.output).toContain(`Address: ${S2}`);
    expect([r.byName, r.s1, r.s2].map((x) => x.output.split('\n')[0])).toEqual([UPLINK_IP, UPLINK_IP, UPLINK_IP]);
  });

  it('lets nothing through from an unregistered VM', async () => {
    const probes = await Promise.all([tcpProbe(vm.c, S1, 443), tcpProbe(vm.c, S1, 80), tcpProbe(vm.c, S2, 443)]);
    expect(probes.map((r) => r.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
  });

  it("lets a guest copying another's MAC or IP, announced by forged ARP, through with nothing either was allowed", async () => {
    const { gs, gf } = guest;
    const gateway = secure.gateway;
    // The forger takes the victim's MAC, keeping its own address: tries the victim's server.
    await forge(gf, { mac: gs.mac, ip: `${gf.ip}/17`, gateway });
    const withMac = (await gf.runAll({ victims: `echo | timeout 3 nc ${S1} 443` })).victims;
    // Then the victim's IP with its own MAC, announced by gratuitous ARP and unsolicited replies: tries both servers.
    await forge(gf, { mac: gf.mac, ip: `${gs.ip}/17`, gateway });
    await announce(gf, gs.ip!, 'reply', 2);
    // The forged ARP arrived and was believed: the backend maps the victim's address to the forger's MAC.
    const neighbour = (await backend.run('ip', ['neigh', 'show', gs.ip!, 'dev', secure.gatewayInterface])).stdout;
    expect(neighbour).toContain(`lladdr ${gf.mac}`);
    const withIp = await gf.runAll({ victims: `echo | timeout 3 nc ${S1} 443`, own: `echo | timeout 3 nc ${S1} 80` });
    expect([withMac, withIp.victims, withIp.own].map((x) => x.exitCode !== 0 && !x.output.includes(UPLINK_IP))).toEqual(
      [true, true, true],
    );

    // Put everything back: the forger goes quiet; the bridge and the backend forget what the forgeries taught them.
    await gf.sh('ip link set eth0 down');
    await lab().bridge?.flushFdb();
    await backend.run('ip', ['neigh', 'flush', 'dev', secure.gatewayInterface]);
    await gs.sh('ip neigh flush dev eth0');
    expect((await gs.sh(`echo | timeout 5 nc ${S1} 443`)).split('\n')[0]).toBe(UPLINK_IP);
  });

  it("lets a domain entry open that name's addresses to that VM only, once resolved", async () => {
    await allow('a', [
      { address: S1, protocol: 'tcp', ports: 443 },
      { domain: 'allowed.example', protocol: 'tcp', ports: 443, specialRanges: TEST_NET },
      { domain: 'other.example', protocol: 'tcp', ports: 443, specialRanges: TEST_NET },
    ]);
    // Nothing resolved it yet: its address is not known to the firewall.
    expect((await tcpProbe(vm.a, S2, 443)).outcome).toBe('timeout');
    expect(await dig(vm.a, secure.gateway, 'other.example')).toEqual({ status: 'NOERROR', answers: [S2] });
    const [a, b] = await Promise.all([tcpProbe(vm.a, S2, 443), tcpProbe(vm.b, S2, 443)]);
    expect(a).toEqual({ outcome: 'connected', firstLine: UPLINK_IP });
    expect(b.outcome).toBe('timeout');
  });

  it('lets service and datain VMs reach both servers, masqueraded, with open DNS', async () => {
    const probes = await Promise.all(
      (['sv', 'di'] as const).flatMap((name) => [
        tcpProbe(vm[name], S1, 443),
        tcpProbe(vm[name], S1, 80),
        tcpProbe(vm[name], S2, 443),
      ]),
    );
    expect(probes).toEqual(Array(6).fill({ outcome: 'connected', firstLine: UPLINK_IP }));
    expect(await dig(vm.sv, '192.168.122.1', 'other.example')).toEqual({ status: 'NOERROR', answers: [S2] });
  });

  it('routes nothing between VM networks, and no VM reaches the API', async () => {
    // A probe that gets through is answered (a RST: nothing listens on 22 there); a dropped one times out.
    const cases: [VmName, string, number][] = [
      ['sv', ips.a, 22],
      ['sv', ips.di, 22],
      ['di', ips.sv, 22],
      ['di', ips.a, 22],
      ['a', ips.sv, 22],
      ['a', ips.di, 22],
      ...(['a', 'sv', 'di'] as const).flatMap((name): [VmName, string, number][] => [
        [name, findNetwork(site, VMS[name].network).gateway, API_PORT],
        [name, API_IP, API_PORT],
      ]),
    ];
    const outcomes = await Promise.all(cases.map(([from, host, port]) => tcpProbe(vm[from], host, port)));
    // The control: the same probe from the backend itself (not forwarded) is answered.
    expect((await tcpProbe(backend, ips.a, 22)).outcome).toBe('refused');
    expect(outcomes.map((o, i) => `${cases[i]?.join(' ')}: ${o.outcome}`)).toEqual(
      cases.map((c) => `${c.join(' ')}: timeout`),
    );
    // From the root namespace, over the management link, it answers.
    expect((await fetch(`${URL}/healthz`)).status).toBe(200);
  });

  it('cuts a deregistered VM off: no new connection, no data on an open one, no lease', async () => {
    const stream = TcpStream.open(vm.a, S1, 443);
    streams.push(stream);
    expect(await stream.echo('before')).toBe(true);
    expect(stream.lines[0]).toBe(UPLINK_IP);
    const tracked = async (...state: string[]) =>
      (await backend.run('conntrack', ['-L', '-p', 'tcp', '-s', ips.a, ...state])).stdout.split('\n').filter(Boolean);
    expect(await tracked('--state', 'ESTABLISHED')).toHaveLength(1);

    const { status, json } = await call('POST', '/v1/deregister', 'host', {
      mac: VMS.a.mac,
      network: 'secure',
      generation: 2,
    });
    expect([status, json]).toEqual([200, { status: 'removed' }]);
    // Its NIC is revoked in the same transaction: every packet it sends, on the open connection too, is dropped
    // (no conntrack scan needed), and the drops are counted.
    expect(await stream.echo('after')).toBe(false);
    const counter = (
      await backend.run('nft', ['list', 'counter', 'inet', 'ticrypt_counters', 'dropped_unregistered_secure'])
    ).stdout;
    expect(Number(/packets (\d+)/.exec(counter)?.[1])).toBeGreaterThan(0);
    await stream.close();
    const probes = await Promise.all([tcpProbe(vm.a, S1, 443), tcpProbe(vm.a, S2, 443), tcpProbe(vm.a, S1, 80)]);
    expect(probes.map((r) => r.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(await dhcpLease(vm.a, 'eth0', 3)).toBeUndefined();
  });

  it('refuses the 40 bad requests on the real service, changing neither the store nor the table', async () => {
    const table = () => lab().table();
    for (const [vm, hosts] of PLACEMENTS) await place(vm, hosts);
    const base = await call('POST', '/v1/register', 'host', BASE_NIC);
    expect(base.status).toBe(200);
    const state = async () => ({
      registrations: (await call('GET', '/v1/registrations', 'admin')).json,
      allowLists: (await call('GET', '/v1/allow-lists', 'admin')).json,
      baseAllowList: (await call('GET', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin')).json,
      ssh: (await call('GET', '/v1/ssh', 'admin')).json,
      table: await table(),
    });
    const before = await state();
    expect(before.table).toContain(`"${secure.gatewayInterface}" . ${BASE_NIC.mac} . ${base.json.ip}`);
    expect(REFUSALS).toHaveLength(40);
    for (const refusal of REFUSALS) {
      const { status, json } = await call(refusal.method, refusal.url, refusal.auth, refusal.body, refusal.raw);
      expect({ name: refusal.name, status, code: json?.error?.code }).toEqual({
        name: refusal.name,
        status: refusal.status,
        code: refusal.code,
      });
      expect(await state(), refusal.name).toEqual(before);
    }
  });

  it('recovers from kill -9 during a burst of registrations: store and table agree after restart', async () => {
    const first = lab().services[0];
    if (first === undefined) throw new Error('no service running');
    const burst = Array.from({ length: 200 }, (_, i) => ({
      vmUuid: uuid(0xb0000 + i),
      vmName: `burst-${i}`,
      mac: `52:54:00:b0:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
      network: 'secure',
      generation: 1,
    }));
    for (const nic of burst) await place(nic.vmUuid, ['kvm-1']);
    const acknowledged: string[] = [];
    let settled = 0;
    const requests = burst.map((nic) =>
      call('POST', '/v1/register', 'host', nic)
        .then((r) => r.status === 200 && acknowledged.push(nic.mac))
        .catch(() => undefined)
        .finally(() => (settled += 1)),
    );
    while (acknowledged.length < 40 && settled < burst.length) await sleep(5);
    await first.kill9();
    await Promise.all(requests);
    expect(acknowledged.length).toBeLessThan(200);

    // Its dnsmasq children outlive a kill -9 (nothing ends them); the next service must cope.
    const left: ProcInfo[] = await first.orphans();
    console.log(
      `after kill -9: ${acknowledged.length} of 200 acknowledged; left running: ${left.map((o) => `${o.pid} ${o.argv.join(' ')}`).join('; ') || 'nothing'}`,
    );

    const second = await lab().startService();
    expect(await first.orphans()).toEqual([]);

    const registrations: { network: string; mac: string; ip: string }[] = (
      await call('GET', '/v1/registrations', 'admin')
    ).json.registrations;
    const stored = new Set(registrations.map((r) => r.mac));
    // Every acknowledged registration survived (the store commits before the API answers).
    expect(acknowledged.filter((mac) => !stored.has(mac))).toEqual([]);
    expect(await registeredSet()).toEqual(
      registrations
        .filter((r) => r.network === 'secure')
        .map((r) => `${secure.gatewayInterface} . ${r.mac} . ${r.ip}`)
        .sort(),
    );
    for (const network of site.networks) {
      // dnsmasq's reservations: the base hosts file plus the files added to the hosts directory since.
      const base = join(lab().paths.state, 'dnsmasq', network.name);
      const dir = join(base, 'hosts');
      const files = (await readdir(dir)).filter((f) => !f.startsWith('.'));
      const found = [
        ...(await readFile(join(base, 'hosts.base'), 'utf8')).split('\n'),
        ...(await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).flatMap((text) => text.split('\n')),
      ].filter(Boolean);
      const expected = registrations.filter((r) => r.network === network.name).map((r) => `${r.mac},id:*,${r.ip}`);
      expect(found.sort(), network.name).toEqual(expected.sort());
    }
    // The new service's dnsmasq is the one serving: a VM registered now gets its lease.
    const again = await register('a', 3);
    expect(again).toBe(ips.a);
    expect(await dhcpLease(vm.a, 'eth0')).toBe(ips.a);
    expect(second.pid).not.toBe(first.pid);
  });
});
