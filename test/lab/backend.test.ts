/**
 * Issue 3's acceptance, against the real programs: `ticrypt-net backend serve`
 * (built CLI) in a "backend" namespace runs table inet ticrypt and one
 * dnsmasq per network; VM namespaces sit on one Open vSwitch bridge (netdev
 * datapath) on access ports tagged with their network's VLAN, as VM NICs do on
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
import { request } from 'node:http';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNetwork } from '../../src/site/lookup.js';
import { parseSite } from '../../src/site/parse.js';
import { BASE_NIC, REFUSALS, type Refusal } from '../backend/api/refusals.js';
import { announce, forge } from './guest/forger.js';
import { type Guest, Guests } from './guest/guest.js';
import { runPrefix } from './names.js';
import { Netns } from './netns.js';
import { OvsBridge } from './ovs.js';
import { PeerServers } from './peer-servers.js';
import { labAvailable } from './prereq.js';
import { configure, dhcpLease, dig, tcpProbe, TcpStream } from './probes.js';
import { BackendService, CLI, type ProcInfo } from './service.js';
import { vethPair } from './veth.js';

const lab = labAvailable(
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
const RESOLVER = '198.51.100.53';
/** The backend's uplink address toward the servers: what they see when VM traffic is masqueraded. */
const UPLINK_IP = '203.0.113.1';
const API_IP = '198.18.0.1';
const API_PORT = 8443;
const URL = `http://${API_IP}:${API_PORT}`;

const uuid = (n: number) => `0b1d2c3e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
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

describe.skipIf(!lab)('backend gateway: the service, nftables and dnsmasq with real traffic (lab)', () => {
  const p = runPrefix();
  /** The site file the service runs with: the three presets, on this run's interfaces. */
  const siteFile = {
    name: 'lab',
    backend: { management: { address: API_IP, port: API_PORT }, uplink: `${p}up`, upstreamDns: [RESOLVER] },
    networks: {
      secure: { preset: 'secure', gatewayInterface: `${p}g1` },
      service: { preset: 'service', gatewayInterface: `${p}g2` },
      datain: { preset: 'datain', gatewayInterface: `${p}g3` },
    },
  };
  const site = parseSite(siteFile);
  const secure = findNetwork(site, 'secure');
  const namespaces: Netns[] = [];
  const services: BackendService[] = [];
  const streams: TcpStream[] = [];
  let bridge: OvsBridge | undefined;
  let servers: PeerServers | undefined;
  let stopResolver: (() => Promise<unknown>) | undefined;
  let backend: Netns;
  let internet: Netns;
  const vm = {} as Record<VmName, Netns>;
  /** The address the API answered for each registered VM. */
  const ips = {} as Record<VmName, string>;
  let work = '';
  let paths: { site: string; store: string; state: string; log: string };
  const tokens = { host: '', otherHost: '', admin: '' };
  let guests: Guests | undefined;
  const guest = {} as Record<GuestName, Guest>;

  async function call(
    method: string,
    path: string,
    auth: Refusal['auth'],
    body?: unknown,
    raw?: string,
  ): Promise<{ status: number; json: any }> {
    const header: Record<Refusal['auth'], Record<string, string>> = {
      host: { authorization: `Bearer ${tokens.host}` },
      'other-host': { authorization: `Bearer ${tokens.otherHost}` },
      admin: { authorization: `Bearer ${tokens.admin}` },
      // Well-formed (principal.secret, 43 base64url characters), but not the secret issued.
      forged: { authorization: `Bearer kvm-1.${'A'.repeat(43)}` },
      malformed: { authorization: `Token ${tokens.host}` },
      none: {},
    };
    if (raw !== undefined) {
      const { status, text } = await rawRequest(method, `${URL}${path}`, header[auth], raw);
      return { status, json: text ? JSON.parse(text) : undefined };
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const response = await fetch(`${URL}${path}`, {
      method,
      headers: { ...header[auth], ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { body: payload }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  async function register(name: VmName | GuestName, generation = 1): Promise<string> {
    const { network, mac, vm: vmUuid } = name in GUESTS ? GUESTS[name as GuestName] : VMS[name as VmName];
    const { status, json } = await call('POST', '/v1/register', 'host', {
      vmUuid,
      vmName: `vm-${name}`,
      mac,
      network,
      generation,
    });
    expect(status, JSON.stringify(json)).toBe(200);
    return json.ip as string;
  }

  async function allow(name: VmName | GuestName, entries: unknown[]): Promise<void> {
    const vmUuid = name in GUESTS ? GUESTS[name as GuestName].vm : VMS[name as VmName].vm;
    const { status, json } = await call('PUT', `/v1/vms/${vmUuid}/allow-list`, 'admin', { entries });
    expect(status, JSON.stringify(json)).toBe(200);
  }

  function startService(): Promise<BackendService> {
    return BackendService.start({
      netns: backend,
      args: [
        ...['backend', 'serve', '--site', paths.site, '--store', paths.store, '--state-dir', paths.state],
        ...['--listen', `${API_IP}:${API_PORT}`, '--insecure-http'],
      ],
      logFile: paths.log,
      pidFile: join(work, `service-${services.length}.pid`),
      url: URL,
    }).then((service) => {
      services.push(service);
      return service;
    });
  }

  /** `nft list table inet ticrypt`, without what traffic and time change (counters, element expiry). */
  async function table(): Promise<string> {
    const { stdout } = await backend.run('nft', ['list', 'table', 'inet', 'ticrypt']);
    return stdout.replace(/packets \d+ bytes \d+/g, '').replace(/ expires \S+/g, '');
  }

  /** The elements of the `registered` set, as `ifname . mac . ip`. */
  async function registeredSet(): Promise<string[]> {
    const { stdout } = await backend.run('nft', ['-j', 'list', 'set', 'inet', 'ticrypt', 'registered']);
    const set = (JSON.parse(stdout) as { nftables: { set?: { elem?: { concat: string[] }[] } }[] }).nftables.find(
      (item) => item.set,
    )?.set;
    return (set?.elem ?? []).map((e) => e.concat.join(' . ')).sort();
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-`));
    await chmod(work, 0o755); // dnsmasq reads the host entries after dropping to nobody
    paths = {
      site: join(work, 'site.json'),
      store: join(work, 'backend.db'),
      state: join(work, 'state'),
      log: join(work, 'service.log'),
    };
    await writeFile(paths.site, JSON.stringify(siteFile));

    backend = await Netns.create(`${p}-bk`);
    internet = await Netns.create(`${p}-in`);
    namespaces.push(backend, internet);
    for (const name of Object.keys(VMS) as VmName[]) {
      vm[name] = await Netns.create(`${p}-${name}`);
      namespaces.push(vm[name]);
    }
    bridge = await OvsBridge.create(`${p}br`);

    // The backend: one leg per network on the bridge, tagged; the uplink; the management link.
    for (const [i, network] of site.networks.entries()) {
      await vethPair({ name: `${p}r${i + 1}` }, { name: network.gatewayInterface, netns: backend }, { txOff: true });
      await bridge.addAccessPort(`${p}r${i + 1}`, network.vlan);
      const prefix = network.subnet.split('/')[1] ?? '';
      await backend.run('ip', ['addr', 'add', `${network.gateway}/${prefix}`, 'dev', network.gatewayInterface]);
    }
    await vethPair({ name: `${p}up`, netns: backend }, { name: 'eth0', netns: internet });
    await vethPair({ name: `${p}m0` }, { name: `${p}m1`, netns: backend });
    await backend.run('ip', ['addr', 'add', `${API_IP}/24`, 'dev', `${p}m1`]);
    await execa('ip', ['addr', 'add', '198.18.0.2/24', 'dev', `${p}m0`]);
    await backend.run('ip', ['addr', 'add', `${UPLINK_IP}/24`, 'dev', `${p}up`]);
    await backend.run('ip', ['addr', 'add', '198.51.100.1/24', 'dev', `${p}up`]);
    await backend.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (const address of [`${S1}/24`, `${S2}/24`, `${RESOLVER}/24`]) {
      await internet.run('ip', ['addr', 'add', address, 'dev', 'eth0']);
    }

    // The VMs: one NIC each, on an access port of their network's VLAN.
    for (const name of Object.keys(VMS) as VmName[]) {
      await vethPair({ name: `${p}${name}` }, { name: 'eth0', netns: vm[name] }, { txOff: true, mac: VMS[name].mac });
      await bridge.addAccessPort(`${p}${name}`, VMS[name].vlan);
      await vm[name].run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    }

    // The internet: two servers that tell each connection where it came from, and a resolver.
    servers = await PeerServers.start(internet, [
      `${S1}:443`,
      `${S1}:80`,
      `${S2}:443`,
      `http:${S1}:8080`,
      `http:${S2}:8080`,
    ]);
    const resolverDir = join(work, 'resolver');
    await execa('mkdir', ['-p', resolverDir]);
    await writeFile(
      join(resolverDir, 'dnsmasq.conf'),
      [
        ...['interface=eth0', 'bind-interfaces', `listen-address=${RESOLVER}`, 'except-interface=lo', 'no-resolv'],
        ...['no-hosts', `address=/allowed.example/${S1}`, `address=/other.example/${S2}`, 'port=53'],
        `pid-file=${join(resolverDir, 'dnsmasq.pid')}`,
        '',
      ].join('\n'),
    );
    // In the foreground, as this process's child: ended (and reaped) by its pid.
    const resolverArgs = ['--keep-in-foreground', `--conf-file=${join(resolverDir, 'dnsmasq.conf')}`];
    const resolver = execa('ip', ['netns', 'exec', internet.name, 'dnsmasq', ...resolverArgs], {
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'ignore',
    });
    stopResolver = async () => {
      resolver.kill('SIGTERM');
      await resolver;
    };
    for (let i = 0; i < 100 && (await dig(backend, RESOLVER, 'allowed.example', 1)).status !== 'NOERROR'; i++)
      await sleep(50);

    const token = async (...args: string[]) =>
      (await execa(process.execPath, [CLI, 'backend', 'token', 'add', ...args, '--store', paths.store])).stdout.trim();
    tokens.host = await token('kvm-1');
    tokens.otherHost = await token('kvm-2');
    tokens.admin = await token('ops', '--admin');
    await startService();
  });

  afterAll(async () => {
    await guests?.destroyAll();
    for (const stream of streams) await stream.close();
    for (const service of services) await service.stop();
    await servers?.stop();
    await stopResolver?.();
    await bridge?.remove();
    for (const ns of namespaces) await ns.remove();
    if (process.env.KEEP_LAB_LOG === undefined && work) await rm(work, { recursive: true, force: true });
    else if (work) console.log(`lab files kept in ${work}`);
  });

  it('gives registered VMs their reserved IP by DHCP, and an unregistered VM no lease', async () => {
    for (const name of ['a', 'b', 'sv', 'di'] as const) ips[name] = await register(name);
    await allow('a', [
      { address: S1, protocol: 'tcp', ports: 443 },
      { domain: 'allowed.example', protocol: 'tcp', ports: 443 },
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
    guests = new Guests(work);
    const reserved = {} as Record<GuestName, string>;
    for (const name of Object.keys(GUESTS) as GuestName[]) reserved[name] = await register(name);
    await allow('gs', [
      { address: S1, protocol: 'tcp', ports: 443 },
      { domain: 'allowed.example', protocol: 'tcp', ports: 8080 },
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
    await bridge?.flushFdb();
    await backend.run('ip', ['neigh', 'flush', 'dev', secure.gatewayInterface]);
    await gs.sh('ip neigh flush dev eth0');
    expect((await gs.sh(`echo | timeout 5 nc ${S1} 443`)).split('\n')[0]).toBe(UPLINK_IP);
  });

  it("lets a domain entry open that name's addresses to that VM only, once resolved", async () => {
    await allow('a', [
      { address: S1, protocol: 'tcp', ports: 443 },
      { domain: 'allowed.example', protocol: 'tcp', ports: 443 },
      { domain: 'other.example', protocol: 'tcp', ports: 443 },
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
    const counter = (await backend.run('nft', ['list', 'counter', 'inet', 'ticrypt', 'dropped_unregistered'])).stdout;
    expect(Number(/packets (\d+)/.exec(counter)?.[1])).toBeGreaterThan(0);
    await stream.close();
    const probes = await Promise.all([tcpProbe(vm.a, S1, 443), tcpProbe(vm.a, S2, 443), tcpProbe(vm.a, S1, 80)]);
    expect(probes.map((r) => r.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(await dhcpLease(vm.a, 'eth0', 3)).toBeUndefined();
  });

  it('refuses the 26 bad requests on the real service, changing neither the store nor the table', async () => {
    const base = await call('POST', '/v1/register', 'host', BASE_NIC);
    expect(base.status).toBe(200);
    const state = async () => ({
      registrations: (await call('GET', '/v1/registrations', 'admin')).json,
      allowLists: (await call('GET', '/v1/allow-lists', 'admin')).json,
      baseAllowList: (await call('GET', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin')).json,
      table: await table(),
    });
    const before = await state();
    expect(before.table).toContain(`"${secure.gatewayInterface}" . ${BASE_NIC.mac} . ${base.json.ip}`);
    expect(REFUSALS).toHaveLength(26);
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
    const first = services[0];
    if (first === undefined) throw new Error('no service running');
    const burst = Array.from({ length: 200 }, (_, i) => ({
      vmUuid: uuid(0xb0000 + i),
      vmName: `burst-${i}`,
      mac: `52:54:00:b0:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
      network: 'secure',
      generation: 1,
    }));
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

    const second = await startService();
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
      const base = join(paths.state, 'dnsmasq', network.name);
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

/**
 * A request with a raw JSON body over node:http. The server may answer (413)
 * and close before the whole body is sent; fetch then reports only the
 * broken pipe, so this reads the answer as it comes and retries a transport
 * failure that left no answer.
 */
async function rawRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  payload: string,
): Promise<{ status: number; text: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise((resolve, reject) => {
        const length = String(Buffer.byteLength(payload));
        const headersOut = { ...headers, 'content-type': 'application/json', 'content-length': length };
        const req = request(url, { method, headers: headersOut, timeout: 15_000 }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 15 s`)));
        req.on('error', reject);
        req.end(payload);
      });
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}
