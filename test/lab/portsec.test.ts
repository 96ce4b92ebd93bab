/**
 * Issue 11's acceptance with the real programs: port security on two lab
 * hosts made by `host apply` (host A's network in vlan mode, host B's in
 * trunk mode, one Open vSwitch), a "physical switch" bridge with the backend
 * (`ticrypt-net backend serve`: nftables, dnsmasq, the API) on it, the real
 * hooks in the real libvirtd, and a real Linux guest booted on host A's
 * libvirt network: the hook registers and pins it at `start`. Namespace
 * endpoints stand in for more VMs: their ports carry what libvirt sets
 * (`attached-mac`, `vm-id`, `iface-id`), they are registered with the API as
 * their host, and `host flows` (the sync) pins them.
 *
 *     host A (vlan)  <p>as: guest G, A1 (victim), A2 (neighbour, crafts frames) ── <p>a.1081 ═ <p>ka (1081) ─┐
 *     host B (trunk) <p>bs: B1, B2 ── <p>bs-up ═ <p>bs-dn ── <p>bu ── <p>b ═ <p>kb (trunk 1081) ───────────┤ switch <p>sw
 *     backend ns: <p>g1 192.168.128.1/17 ═ <p>gr (1081) ─────────────────────────────────────────────────┘
 *                 <p>m1 (the API) ═ <p>m0 root
 *
 * The guest forges with its own tools (another's MAC, address or both, ARP,
 * its own DHCP server); a namespace VM sends what no guest tool makes.
 * Every attack is counted at its receivers (nft counters on the ingress of the
 * gateway's, the victim's and a remote VM's interface): first on unprotected
 * bridges (the attacks arrive: the test can fail), then pinned (none arrives),
 * while the legitimate traffic beside them flows.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookieOf, cookieText } from '../../src/portsec/cookie.js';
import { lookupArgs, parseLookup } from '../../src/portsec/ovs.js';
import { readOvsdb } from '../../src/portsec/ovsdb.js';
import { linkLocalOf } from '../../src/portsec/render.js';
import { cli } from '../support/cli.js';
import { forge, rogueDhcp } from './guest/forger.js';
import { type Guest, Guests } from './guest/guest.js';
import {
  arpFrame,
  dhcp6AdvertiseFrame,
  dhcpDiscoverFrame,
  dhcpOfferFrame,
  FrameCounters,
  naFrame,
  raFrame,
  sendFrame,
  udp6Frame,
} from './frames.js';
import { LabResources, pings, vsctl } from './host-lab.js';
import { HOOK_CONFIG, installLabHooks, until, type LabHooks } from './libvirt-hooks.js';
import { runPrefix } from './names.js';
import { Netns } from './netns.js';
import { labAvailable } from './prereq.js';
import { BackendService, CLI } from './service.js';
import { vethPair } from './veth.js';

const lab = labAvailable(
  'ovs-vsctl',
  'ovs-ofctl',
  'virsh',
  'libvirtd',
  'qemu-system-x86_64',
  'nft',
  'dnsmasq',
  'ip',
  'ethtool',
  'perl',
  'socat',
);

const GW = '192.168.128.1';
const OURS = 'cookie=0x7c4e000000000000/0xffff000000000000';
const ofctl = (...args: string[]) => execa('ovs-ofctl', ['-O', 'OpenFlow14', '--no-names', ...args]);
/** Our flows on a bridge, by cookie. */
async function flowsByCookie(bridge: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await ofctl('dump-flows', bridge)).stdout.split('\n')) {
    const cookie = /cookie=(0x[0-9a-f]+)/.exec(line)?.[1];
    if (cookie !== undefined) counts.set(cookie, (counts.get(cookie) ?? 0) + 1);
  }
  return counts;
}

describe.skipIf(!lab)('port security: two hosts, the backend, the hooks and a real guest (lab)', () => {
  const p = runPrefix();
  const NET = `${p}sec`;
  const k = 4 * (16 + Math.floor(Math.random() * 46));
  const API_IP = `198.18.0.${k + 1}`;
  const URL = `http://${API_IP}:8443`;
  const res = new LabResources();
  const namespaces: Netns[] = [];
  const counters: FrameCounters[] = [];
  let work = '';
  let backend: Netns;
  let service: BackendService | undefined;
  let hooks: LabHooks | undefined;
  let guests: Guests | undefined;
  let guest: Guest;
  const tokens = { a: '', b: '', admin: '' };
  const files = { siteA: '', siteB: '', hookB: '' };
  let gatewayMac = '';

  /** The namespace endpoints: host, bridge, MAC, VM UUID; their IP once registered. */
  const VMS = {
    a1: { host: 'a', mac: '52:54:00:5e:00:a1', vm: '0b1d2c3e-0000-4000-8000-0000000000a1' },
    a2: { host: 'a', mac: '52:54:00:5e:00:a2', vm: '0b1d2c3e-0000-4000-8000-0000000000a2' },
    b1: { host: 'b', mac: '52:54:00:5e:00:b1', vm: '0b1d2c3e-0000-4000-8000-0000000000b1' },
    b2: { host: 'b', mac: '52:54:00:5e:00:b2', vm: '0b1d2c3e-0000-4000-8000-0000000000b2' },
  } as const;
  type Vm = keyof typeof VMS;
  const ns = {} as Record<Vm, Netns>;
  const ip = {} as Record<Vm, string>;
  const GUEST_MAC = '52:54:00:5e:00:9a';
  const GUEST_UUID = '0b1d2c3e-0000-4000-8000-00000000009a';
  const bridgeOf = (host: 'a' | 'b') => `${p}${host}s`;

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const response = await fetch(`${URL}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const json = (await response.json()) as any;
    expect(response.status, JSON.stringify(json)).toBe(200);
    return json;
  };
  const hostArgs = (host: 'a' | 'b') =>
    host === 'a'
      ? ['--site', files.siteA, '--host', 'a', '--datapath', 'netdev', '--config', HOOK_CONFIG]
      : [
          '--site',
          files.siteB,
          '--host',
          'b',
          '--datapath',
          'netdev',
          '--uplink-bridge',
          `${p}bu`,
          '--config',
          files.hookB,
        ];
  const flows = async (host: 'a' | 'b', ...extra: string[]) => {
    const run = await cli('host', 'flows', '--config', host === 'a' ? HOOK_CONFIG : files.hookB, ...extra);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    return run.stdout;
  };
  /** Site files of the two hosts, with a peers policy (one libvirtd serves both: the network names differ). */
  const writeSites = async (peers: 'gateway' | 'groups') => {
    const network = (bridge: string, mode: string) =>
      `{ preset: secure, bridge: ${bridge}, uplink: { mode: ${mode} }, gatewayInterface: ${p}g1, peers: ${peers} }`;
    await writeFile(
      files.siteA,
      `name: ${p}\nhosts:\n  a: { uplink: ${p}a }\nnetworks:\n  ${NET}: ${network(bridgeOf('a'), 'vlan')}\n`,
    );
    await writeFile(
      files.siteB,
      `name: ${p}\nhosts:\n  b: { uplink: ${p}b }\nnetworks:\n  ${p}bsec: ${network(bridgeOf('b'), 'trunk')}\n`,
    );
  };
  const apply = async (host: 'a' | 'b') => {
    const run = await cli('host', 'apply', ...hostArgs(host));
    expect(run.code, run.stderr + run.stdout).toBe(0);
    return run.stdout;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-psec-`));
    await chmod(work, 0o755);
    res.dirs.push(work);
    Object.assign(files, {
      siteA: join(work, 'a.yaml'),
      siteB: join(work, 'b.yaml'),
      hookB: join(work, 'hook-b.json'),
    });

    // The switch; host A's VLAN interface stand-in (an access port there); host B's bond stand-in (a trunk).
    res.bridges.push(`${p}sw`);
    await vsctl('add-br', `${p}sw`, '--', 'set', 'bridge', `${p}sw`, 'datapath_type=netdev');
    await res.veth(`${p}a.1081`, `${p}ka`);
    await vsctl('add-port', `${p}sw`, `${p}ka`, 'tag=1081');
    await res.veth(`${p}b`, `${p}kb`);
    await vsctl('add-port', `${p}sw`, `${p}kb`, 'trunks=1081');

    // The backend: its leg on the switch, the management link, an uplink, the service.
    backend = await Netns.create(`${p}-bk`);
    namespaces.push(backend);
    await vethPair({ name: `${p}gr` }, { name: `${p}g1`, netns: backend }, { txOff: true });
    await vsctl('add-port', `${p}sw`, `${p}gr`, 'tag=1081');
    await backend.run('ip', ['addr', 'add', `${GW}/17`, 'dev', `${p}g1`]);
    await backend.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    gatewayMac = (await backend.run('cat', [`/sys/class/net/${p}g1/address`])).stdout.trim();
    await vethPair({ name: `${p}m0` }, { name: `${p}m1`, netns: backend });
    await execa('ip', ['addr', 'add', `198.18.0.${k + 2}/30`, 'dev', `${p}m0`]);
    await backend.run('ip', ['addr', 'add', `${API_IP}/30`, 'dev', `${p}m1`]);
    await backend.run('ip', ['link', 'add', `${p}up`, 'type', 'veth', 'peer', 'name', `${p}uq`]);
    await backend.run('ip', ['link', 'set', `${p}up`, 'up']);
    const backendSite = {
      name: p,
      backend: { management: { address: API_IP, port: 8443 }, uplink: `${p}up`, upstreamDns: [] },
      networks: { [NET]: { preset: 'secure', bridge: bridgeOf('a'), gatewayInterface: `${p}g1` } },
    };
    await writeFile(join(work, 'backend.json'), JSON.stringify(backendSite));
    const store = join(work, 'backend.db');
    const token = async (...args: string[]) =>
      (await execa(process.execPath, [CLI, 'backend', 'token', 'add', ...args, '--store', store])).stdout.trim();
    tokens.a = await token('kvm-a');
    tokens.b = await token('kvm-b');
    tokens.admin = await token('ops', '--admin');
    service = await BackendService.start({
      netns: backend,
      args: [
        ...['backend', 'serve', '--site', join(work, 'backend.json'), '--store', store],
        ...['--state-dir', join(work, 'state'), '--listen', `${API_IP}:8443`, '--insecure-http'],
      ],
      logFile: join(work, 'service.log'),
      pidFile: join(work, 'service.pid'),
      url: URL,
    });

    // Host A's hooks in the real libvirtd (its hook.yaml); host B's configuration for its sync only.
    for (const [host, file] of [
      ['a', join(work, 'token-a')],
      ['b', join(work, 'token-b')],
    ] as const) {
      await writeFile(file, tokens[host], { mode: 0o600 });
    }
    const hookConfig = (host: 'a' | 'b') => ({
      hostId: `kvm-${host}`,
      backend: { url: URL, tokenFile: join(work, `token-${host}`), insecure: true },
      networks: [{ name: NET, bridge: bridgeOf(host) }],
      timeouts: { requestMs: 1000, hookMs: 2000 },
      spoolDir: join(work, `spool-${host}`),
      syslog: false,
    });
    await writeFile(files.hookB, JSON.stringify(hookConfig('b')), { mode: 0o600 });
    hooks = await installLabHooks(hookConfig('a'));

    // Both hosts from their site files (fail_mode=secure, the policy, the bridge programs).
    await writeSites('gateway');
    res.networks.push(NET, `${p}bsec`);
    res.bridges.push(bridgeOf('a'), bridgeOf('b'), `${p}bu`);
    for (const host of ['a', 'b'] as const) {
      const out = await apply(host);
      expect(out).toContain(
        `create bridge ${bridgeOf(host)} (datapath_type=netdev, fail_mode=secure, port security peers=gateway ipv6=off)`,
      );
      expect(out).toContain(`install bridge flows ${bridgeOf(host)}: missing`);
      expect(out).toContain('confirmed: nothing left to change');
    }
    // A flow of someone else's, which nothing of ours may touch.
    await ofctl('add-flow', bridgeOf('a'), 'cookie=0x1234,table=0,priority=5,dl_type=0x88b5,actions=drop');

    // The namespace VMs: ports as libvirt makes them; registered by their host; addresses as the backend gave.
    for (const [name, spec] of Object.entries(VMS) as [Vm, (typeof VMS)[Vm]][]) {
      ns[name] = await Netns.create(`${p}-${name}`);
      namespaces.push(ns[name]);
      const port = `${p}${name}`;
      await vethPair({ name: port }, { name: 'eth0', netns: ns[name] }, { txOff: true, mac: spec.mac });
      res.links.push(port);
      await vsctl(
        ...['add-port', bridgeOf(spec.host), port, 'tag=1081', '--', 'set', 'interface', port],
        ...[
          `external_ids:attached-mac="${spec.mac}"`,
          `external_ids:vm-id=${spec.vm}`,
          `external_ids:iface-id=${spec.vm}`,
        ],
      );
      // Placed on its host by the VM launcher (the admin), as every VM is before it starts.
      await api('PUT', `/v1/vms/${spec.vm}/placement`, tokens.admin, { hosts: [`kvm-${spec.host}`] });
      const answer = await api('POST', '/v1/register', spec.host === 'a' ? tokens.a : tokens.b, {
        vmUuid: spec.vm,
        vmName: `vm-${name}`,
        mac: spec.mac,
        network: NET,
        generation: Date.now() * 1000,
      });
      expect(answer.gatewayMac).toBe(gatewayMac);
      ip[name] = answer.ip;
      await ns[name].run('ip', ['addr', 'add', `${ip[name]}/17`, 'dev', 'eth0']);
      await ns[name].run('ip', ['route', 'add', 'default', 'via', GW]);
      await ns[name].run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    }
    for (const host of ['a', 'b'] as const) expect(await flows(host)).toMatch(/: [12] change\(s\), in place\n$/);

    // The guest: on host A's libvirt network, as the VM launcher would put it; the hook pins it at start.
    guests = new Guests(work);
    await api('PUT', `/v1/vms/${GUEST_UUID}/placement`, tokens.admin, { hosts: ['kvm-a'] });
    guest = await guests.boot({ name: `${p}g`, nic: { mac: GUEST_MAC, network: NET }, uuid: GUEST_UUID });
  }, 240_000);

  afterAll(async () => {
    await guests?.destroyAll();
    for (const c of counters) await c.remove();
    await hooks?.restore();
    await service?.stop();
    // An ovs-vswitchd a failed test left stopped is started again.
    if ((await execa('pgrep', ['-x', 'ovs-vswitchd'], { reject: false })).exitCode !== 0) await startVswitchd();
    for (const n of namespaces) await n.remove();
    await res.cleanup();
  }, 120_000);

  it('the hook pinned the guest at start, before it ran; it leased its reserved address through its pinned port', async () => {
    const { registrations } = await api('GET', '/v1/registrations', tokens.a);
    const reserved = registrations.find((r: { mac: string }) => r.mac === GUEST_MAC);
    expect(guest.ip).toBe(reserved.ip);
    const port = (
      await vsctl('--bare', '--columns=name', 'find', 'interface', `external_ids:attached-mac="${GUEST_MAC}"`)
    ).trim();
    const ofport = Number(await vsctl('get', 'interface', port, 'ofport'));
    const stamps = (await ofctl('dump-flows', bridgeOf('a'), 'table=99')).stdout;
    expect(stamps).toContain(`cookie=${cookieText(cookieOf('port', ofport))},`);
    // Everything the guest sent went through its program: the port's rx equals the dispatch flow's packets.
    await sleep(1200);
    const dispatch = (await ofctl('dump-flows', bridgeOf('a'), `table=0,in_port=${ofport}`)).stdout;
    expect(Number(/n_packets=(\d+)/.exec(dispatch)?.[1])).toBeGreaterThan(0);
  }, 60_000);

  it("the hook's reader of ovsdb-server's socket reads what ovs-vsctl lists", async () => {
    const listed = parseLookup((await execa('ovs-vsctl', lookupArgs(10_000))).stdout);
    const read = await readOvsdb(10_000);
    const mine = (x: typeof read) => ({
      bridges: x.bridges.filter((b) => b.name.startsWith(p)).sort((a, b) => a.name.localeCompare(b.name)),
      ports: x.ports.filter((q) => q.bridge.startsWith(p)).sort((a, b) => a.name.localeCompare(b.name)),
    });
    expect(mine(read).ports.length).toBeGreaterThan(5);
    expect(mine(read)).toEqual(mine(listed));
  });

  it('peers gateway: every VM reaches the gateway, none reaches another, on its host or the other', async () => {
    for (const name of Object.keys(VMS) as Vm[]) expect(await pings(ns[name].name, GW, 5), name).toBe(true);
    expect(await guest.run(`ping -c 2 -W 2 ${GW}`)).toMatchObject({ exitCode: 0 });
    for (const [from, to] of [
      ['a1', 'a2'],
      ['a1', 'b1'],
      ['b1', 'b2'],
      ['b2', 'a2'],
    ] as const) {
      expect(await pings(ns[from].name, ip[to], 1), `${from} -> ${to}`).toBe(false);
    }
    expect(await guest.run(`ping -c 2 -W 1 ${ip.a1}`)).not.toMatchObject({ exitCode: 0 });
  }, 90_000);

  it('a forger gets none of its frames to the gateway or another VM; unprotected, they all arrive', async () => {
    const a1 = VMS.a1;
    const a2 = VMS.a2;
    const rules: Record<string, string> = {
      copymac: 'icmp type echo-request ip length 1029',
      copyip: 'icmp type echo-request ip length 1030',
      copyboth: 'icmp type echo-request ip length 1031',
      arpgw: `ether saddr ${GUEST_MAC} arp saddr ip ${GW}`,
      arpnb: `ether saddr ${GUEST_MAC} arp saddr ip ${ip.a1}`,
      rogue: `ether saddr ${GUEST_MAC} udp sport 67`,
      dhcpoffer: `ether saddr ${a2.mac} udp sport 67`,
      ra: `ether saddr ${a2.mac} icmpv6 type nd-router-advert`,
      dhcp6: `ether saddr ${a2.mac} udp sport 547`,
      arpsha: `ether saddr ${a2.mac} arp saddr ether ${a1.mac}`,
      na: `ether saddr ${a2.mac} icmpv6 type nd-neighbor-advert`,
      ll6: `ether saddr ${a2.mac} udp dport 9`,
      legit: 'icmp type echo-request ip length 1078',
      legitA2: `ether saddr ${a2.mac} icmp type echo-request ip length 1088`,
    };
    const receivers = {
      gateway: await FrameCounters.create(backend, `${p}g1`, `${p}count`, rules),
      a1: await FrameCounters.create(ns.a1, 'eth0', `${p}count`, rules),
      b1: await FrameCounters.create(ns.b1, 'eth0', `${p}count`, rules),
    };
    counters.push(...Object.values(receivers));
    const guestIp = guest.ip!;
    const round = async () => {
      for (const bridge of [`${p}sw`, bridgeOf('a'), bridgeOf('b')]) await execa('ovs-appctl', ['fdb/flush', bridge]);
      for (const n of [backend, ...Object.values(ns)]) await n.run('ip', ['neigh', 'flush', 'all']);
      for (const c of Object.values(receivers)) await c.reset();
      // The guest: another's MAC, then another's address, then both (the gateway's MAC known, so frames are sent).
      const ping = (size: number) => `arp -s ${GW} ${gatewayMac}; ping -c 3 -i 0.2 -W 1 -s ${size} ${GW}; true`;
      await forge(guest, { mac: a1.mac, ip: `${guestIp}/17`, gateway: GW });
      await guest.sh(ping(1001), 30);
      await forge(guest, { mac: GUEST_MAC, ip: `${ip.a1}/17`, gateway: GW });
      await guest.sh(ping(1002), 30);
      await forge(guest, { mac: a1.mac, ip: `${ip.a1}/17`, gateway: GW });
      await guest.sh(ping(1003), 30);
      // Back to itself; then it claims the gateway's address and the victim's by ARP; and it pings as itself.
      await forge(guest, { mac: GUEST_MAC, ip: `${guestIp}/17`, gateway: GW });
      await guest.sh(`arping -U -c 3 -I eth0 -s ${GW} ${GW}; arping -A -c 3 -I eth0 -s ${ip.a1} ${ip.a1}; true`, 30);
      await guest.sh(ping(1050), 30);
      // The guest's own rogue DHCP server (busybox udhcpd) answers a discover the gateway's leg broadcasts
      // (from the gateway's MAC: a broadcast the gateway sends reaches every VM port, pinned or not).
      const udhcpd = await rogueDhcp(guest, { start: '192.168.200.10', end: '192.168.200.20', router: guestIp });
      await sleep(500);
      await sendFrame(backend, `${p}g1`, dhcpDiscoverFrame({ src: gatewayMac, chaddr: '52:54:00:5e:00:ee' }), 1);
      await sleep(3000); // udhcpd ARP-probes the address it offers (2 s) before it offers
      await guest.run(`kill ${udhcpd}; killall udhcpd; true`);
      // A2 sends what no guest tool makes: a DHCP offer, a router advertisement, a DHCPv6 server message,
      // ARP with A1's MAC inside, a neighbour advertisement for A1's address, link-local IPv6 to B1.
      const me = { src: a2.mac, sip6: linkLocalOf(a2.mac) };
      await sendFrame(ns.a2, 'eth0', dhcpOfferFrame({ src: a2.mac, sip: ip.a2, yiaddr: '192.168.200.9' }));
      await sendFrame(ns.a2, 'eth0', raFrame(me));
      await sendFrame(ns.a2, 'eth0', dhcp6AdvertiseFrame(me));
      await sendFrame(ns.a2, 'eth0', arpFrame({ src: a2.mac, op: 1, sha: a1.mac, spa: ip.a2, tpa: GW }));
      await sendFrame(ns.a2, 'eth0', naFrame({ ...me, target: linkLocalOf(a1.mac) }));
      await sendFrame(
        ns.a2,
        'eth0',
        udp6Frame({ src: a2.mac, dst: VMS.b1.mac, sip6: me.sip6, dip6: linkLocalOf(VMS.b1.mac) }),
      );
      // A2's own traffic, beside its attacks.
      await ns.a2.run('ping', ['-c', '3', '-i', '0.2', '-W', '1', '-s', '1060', GW]).catch(() => {});
      await sleep(500);
      return {
        gateway: await receivers.gateway.read(),
        a1: await receivers.a1.read(),
        b1: await receivers.b1.read(),
      };
    };

    // Until now host apply, the syncs and the hook left the foreign flow alone.
    expect((await flowsByCookie(bridgeOf('a'))).get('0x1234')).toBe(1);
    // Unprotected, as a bridge without port security is: standalone, none of our flows. (OVS flushes a
    // bridge's flows, foreign ones too, whenever its fail_mode changes and it has no controller.)
    for (const host of ['a', 'b'] as const) {
      await vsctl('set', 'bridge', bridgeOf(host), 'fail_mode=standalone');
      await ofctl('del-flows', bridgeOf(host), OURS);
    }
    const open = await round();
    for (const attack of [
      'copymac',
      'copyip',
      'copyboth',
      'arpgw',
      'arpnb',
      'rogue',
      'dhcpoffer',
      'ra',
      'dhcp6',
      'arpsha',
      'na',
    ]) {
      expect(open.gateway[attack], `unprotected: ${attack} at the gateway`).toBeGreaterThan(0);
    }
    for (const attack of ['arpgw', 'rogue', 'dhcpoffer', 'ra', 'dhcp6', 'na']) {
      expect(open.a1[attack], `unprotected: ${attack} at A1`).toBeGreaterThan(0);
      expect(open.b1[attack], `unprotected: ${attack} at B1`).toBeGreaterThan(0);
    }
    expect(open.b1.ll6, 'unprotected: link-local IPv6 at B1').toBeGreaterThan(0);

    // Port security back: host apply puts fail_mode=secure back (and says so), the sync every program.
    for (const host of ['a', 'b'] as const) {
      const plan = await cli('host', 'plan', ...hostArgs(host));
      expect(plan.stdout).toContain(`set bridge ${bridgeOf(host)} port security (fail_mode=secure`);
      expect(await apply(host)).toContain(`install bridge flows ${bridgeOf(host)}: missing`);
      expect((await cli('host', 'plan', ...hostArgs(host))).stdout).toBe('nothing to change\n');
    }
    const guestPort = (
      await vsctl('--bare', '--columns=name', 'find', 'interface', `external_ids:attached-mac="${GUEST_MAC}"`)
    ).trim();
    const guestOfport = Number(await vsctl('get', 'interface', guestPort, 'ofport'));
    const offersDropped = async () =>
      Number(
        /n_packets=(\d+)/.exec(
          (await ofctl('dump-flows', bridgeOf('a'), `table=10,in_port=${guestOfport},udp,tp_src=67`)).stdout,
        )?.[1] ?? 0,
      );
    const droppedBefore = await offersDropped();
    const pinned = await round();
    for (const [receiver, counts] of Object.entries(pinned)) {
      const { legit, legitA2, ...attacks } = counts;
      expect(attacks, `pinned: at ${receiver}`).toEqual(Object.fromEntries(Object.keys(attacks).map((a) => [a, 0])));
      if (receiver === 'gateway') {
        expect(legit, 'the guest pinging as itself').toBe(3);
        expect(legitA2, 'A2 pinging as itself').toBe(3);
      }
    }
    // The guest's server did answer (its offers died on its program's udp 67 drop, counters lag up to ~1 s).
    expect(
      await until(
        'the guest offers counted',
        async () => ((await offersDropped()) > droppedBefore ? true : undefined),
        5000,
      ),
    ).toBe(true);
    expect(await pings(ns.a1.name, GW, 3)).toBe(true);
  }, 240_000);

  it('ovs-vswitchd restarted: every flow lost, closed meanwhile (fail_mode=secure); host plan shows it; the sync puts it back', async () => {
    await execa('/usr/share/openvswitch/scripts/ovs-ctl', ['--no-ovsdb-server', 'stop']);
    await startVswitchd();
    await until(
      'the bridges back',
      async () => ((await ofctl('dump-flows', bridgeOf('a'))).exitCode === 0 ? true : undefined),
      20_000,
    );
    expect((await flowsByCookie(bridgeOf('a'))).size).toBe(0);
    expect(await pings(ns.a1.name, GW, 2)).toBe(false);
    const plan = (await cli('host', 'plan', ...hostArgs('a'))).stdout;
    expect(plan).toContain(`install bridge flows ${bridgeOf('a')}: missing`);
    expect(plan).toContain(`install port flows ${bridgeOf('a')} ${p}a1 `);
    const doctorArgs = ['doctor', '--site', files.siteA, '--host', 'a', '--datapath', 'netdev'];
    const doctor = await cli('--json', ...doctorArgs, '--hook-config', HOOK_CONFIG);
    const results = (
      JSON.parse(doctor.stdout) as { results: { id: string; subject: string; status: string; message: string }[] }
    ).results;
    expect(results.find((r) => r.id === 'flows.programs' && r.subject === bridgeOf('a'))).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('the canary is gone'),
    });
    // What the operator reads (the README quotes it): the port-security lines of doctor's text, before and after.
    const portsecLines = async () =>
      (await cli(...doctorArgs, '--hook-config', HOOK_CONFIG)).stdout
        .split(/\n(?=[A-Z]{2,4} )/)
        .filter((l) => /^\w+ +(bridge\.port-security|flows\.programs) /.test(l))
        .join('\n');
    const lost = await portsecLines();
    console.log(`doctor after the restart:\n${lost}`);
    expect(lost).toMatch(new RegExp(`^FAIL flows\\.programs ${bridgeOf('a')}: the canary is gone`, 'm'));
    expect(lost).toMatch(new RegExp(`^OK +bridge\\.port-security ${bridgeOf('a')}: fail_mode=secure`, 'm'));
    for (const host of ['a', 'b'] as const) expect(await flows(host)).toMatch(/change\(s\), in place\n$/);
    const back = await portsecLines();
    console.log(`doctor after host flows:\n${back}`);
    expect(back).toMatch(
      new RegExp(`^OK +flows\\.programs ${bridgeOf('a')}: \\d+ program\\(s\\) in place, canary present`, 'm'),
    );
    expect(await pings(ns.a1.name, GW, 5)).toBe(true);
    expect(await pings(ns.b1.name, GW, 5)).toBe(true);
    expect(await guest.run(`ping -c 2 -W 2 ${GW}`)).toMatchObject({ exitCode: 0 });
    expect((await flows('a', '--dry-run')).trim()).toBe('nothing to change');
  }, 120_000);

  it('a hot-plugged NIC: closed until host pin pins it (the network hook asked); unplugged, its flows go', async () => {
    const mac = '52:54:00:5e:00:9b';
    await guest.attachNic({
      mac,
      xml: `<interface type='network'><source network='${NET}'/><mac address='${mac}'/><model type='usb-net'/></interface>`,
    });
    const port = await until(
      'the hot-plugged port',
      async () =>
        (await vsctl('--bare', '--columns=name', 'find', 'interface', `external_ids:attached-mac="${mac}"`)).trim() ||
        undefined,
      20_000,
    );
    const ofport = Number(await vsctl('get', 'interface', port, 'ofport'));
    // No qemu hook runs for a hot-plug, and the network hook ran before the port existed: it is closed.
    expect((await ofctl('dump-flows', bridgeOf('a'), 'table=99')).stdout).not.toContain(`in_port=${ofport} `);
    const run = await cli('host', 'pin', '--config', HOOK_CONFIG, '--wait', '10000');
    expect(run.stdout).toBe('pinned 1, waiting 0, dropped 0\n');
    expect((await ofctl('dump-flows', bridgeOf('a'), 'table=99')).stdout).toContain(`in_port=${ofport} `);
    await execa('virsh', [
      '-q',
      '-c',
      'qemu:///system',
      'detach-interface',
      guest.name,
      'bridge',
      '--mac',
      mac,
      '--live',
    ]);
    await until(
      'the port gone',
      async () =>
        (await vsctl('--bare', '--columns=name', 'find', 'interface', `external_ids:attached-mac="${mac}"`)).trim() ===
        ''
          ? true
          : undefined,
      20_000,
    );
    expect(await flows('a')).toMatch(/1 change\(s\), in place/);
    expect((await ofctl('dump-flows', bridgeOf('a'), 'table=99')).stdout).not.toContain(`in_port=${ofport} `);
  }, 90_000);

  it("flows vanish at stop: virsh destroy removes exactly the guest's program; every other flow stays, foreign ones too", async () => {
    const port = (
      await vsctl('--bare', '--columns=name', 'find', 'interface', `external_ids:attached-mac="${GUEST_MAC}"`)
    ).trim();
    const cookie = cookieText(cookieOf('port', Number(await vsctl('get', 'interface', port, 'ofport'))));
    await ofctl('add-flow', bridgeOf('a'), 'cookie=0x1234,table=0,priority=5,dl_type=0x88b5,actions=drop');
    const before = await flowsByCookie(bridgeOf('a'));
    expect(before.get(cookie)).toBeGreaterThan(10);
    await guest.destroy();
    const after = await flowsByCookie(bridgeOf('a'));
    expect(after.has(cookie)).toBe(false);
    before.delete(cookie);
    expect(after).toEqual(before);
    expect(after.get('0x1234')).toBe(1);
    expect(after.get('0x0')).toBeUndefined();
  }, 60_000);

  it('peers groups across two hosts: members reach each other and the gateway; the others only the gateway', async () => {
    await writeSites('groups');
    for (const host of ['a', 'b'] as const) {
      expect(await apply(host)).toContain(
        `set bridge ${bridgeOf(host)} port security (fail_mode=secure, ticrypt-net-peers=groups`,
      );
    }
    for (const name of ['a1', 'b1'] as const) {
      expect(await api('PUT', `/v1/vms/${VMS[name].vm}/group`, tokens.admin, { group: 'lab' })).toEqual({
        vmUuid: VMS[name].vm,
        group: 'lab',
      });
    }
    const peers = await api('GET', `/v1/networks/${NET}/peers`, tokens.b);
    expect(peers).toMatchObject({ network: NET, gatewayMac, groups: [{ name: 'lab', members: expect.any(Array) }] });
    for (const host of ['a', 'b'] as const) {
      expect(await flows(host)).toContain('in place');
      expect((await flows(host, '--dry-run')).trim()).toBe('nothing to change');
    }
    for (const n of Object.values(ns)) await n.run('ip', ['neigh', 'flush', 'all']);
    expect(await pings(ns.a1.name, ip.b1, 5)).toBe(true);
    expect(await pings(ns.b1.name, ip.a1, 5)).toBe(true);
    for (const [from, to] of [
      ['a2', 'a1'],
      ['a2', 'b1'],
      ['b2', 'b1'],
      ['b2', 'a1'],
      ['a1', 'a2'],
    ] as const) {
      expect(await pings(ns[from].name, ip[to], 1), `${from} -> ${to}`).toBe(false);
    }
    for (const name of Object.keys(VMS) as Vm[]) expect(await pings(ns[name].name, GW, 3), name).toBe(true);
  }, 120_000);
});

/** Start ovs-vswitchd again as scripts/lab-daemons.sh starts Open vSwitch (ovsdb-server kept running). */
async function startVswitchd(): Promise<void> {
  await execa('/usr/share/openvswitch/scripts/ovs-ctl', [
    '--no-ovsdb-server',
    '--system-id=random',
    '--no-monitor',
    'start',
  ]);
}
