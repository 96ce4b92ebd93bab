/**
 * Issue 4's acceptance with the real programs: libvirtd with the hooks
 * installed as the README says (`ticrypt-net hook install`, then a libvirtd
 * restart), an Open vSwitch netdev bridge, a libvirt network defined from the
 * project's XML, the backend service (`ticrypt-net backend serve`: nftables and
 * dnsmasq) in its own namespace reached over a management link, and real Linux
 * guests (test/lab/guest: `<domain type='qemu'>`, direct kernel boot) whose NIC
 * is the one the project renders, and which ask for their address by DHCP.
 *
 *     guest ── vnetN (tag 1081) ── OVS <p>bs ── <p>r1 (tag 1081) ═ <p>g1 192.168.128.1 ─ backend ns
 *                                                       root <p>m0 ═ <p>m1 (API over a /30 in 198.18.0.0/24)
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderInterfaceXml } from '../../src/libvirt/interface-xml.js';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { parseSite } from '../../src/site/parse.js';
import { type Guest, Guests } from '../lab/guest/guest.js';
import { runPrefix } from '../lab/names.js';
import { Netns } from '../lab/netns.js';
import { OvsBridge } from '../lab/ovs.js';
import { labAvailable } from '../lab/prereq.js';
import { BackendService, CLI, endPid } from '../lab/service.js';
import {
  HOOK_CONFIG as CONFIG,
  installLabHooks,
  pidOf,
  restartLibvirtd,
  until,
  type LabHooks,
} from '../lab/libvirt-hooks.js';
import { vethPair } from '../lab/veth.js';
import { bundleHook, randomMac } from './support.js';

const lab = labAvailable(
  'virsh',
  'libvirtd',
  'virtlogd',
  'ovs-vsctl',
  'qemu-system-x86_64',
  'nft',
  'dnsmasq',
  'ip',
  'ethtool',
  'perl',
);

const virsh = (...args: string[]) => execa('virsh', ['-q', '-c', 'qemu:///system', ...args], { timeout: 150_000 });

describe.skipIf(!lab)('qemu and network hooks with libvirtd, OVS, the backend service and a real VM (lab)', () => {
  const p = runPrefix();
  const k = 4 * (16 + Math.floor(Math.random() * 46));
  const API_IP = `198.18.0.${k + 1}`;
  const ROOT_IP = `198.18.0.${k + 2}`;
  const URL = `http://${API_IP}:8443`;
  const NET = `${p}sec`;
  const DOMAIN = `${p}vm`;
  const MAC = randomMac();
  const site = {
    name: 'lab',
    backend: { management: { address: API_IP, port: 8443 }, uplink: `${p}up`, upstreamDns: [] },
    networks: { [NET]: { preset: 'secure', bridge: `${p}bs`, gatewayInterface: `${p}g1` } },
  };
  let work = '';
  let backend: Netns | undefined;
  let bridge: OvsBridge | undefined;
  let service: BackendService | undefined;
  let token = '';
  let adminToken = '';
  let paths: { site: string; store: string; state: string; log: string; spool: string };
  const started: string[] = [];
  let hooks: LabHooks | undefined;

  const startService = async () => {
    service = await BackendService.start({
      netns: backend!,
      args: [
        'backend',
        'serve',
        '--site',
        paths.site,
        '--store',
        paths.store,
        '--state-dir',
        paths.state,
        '--listen',
        `${API_IP}:8443`,
        '--insecure-http',
      ],
      logFile: paths.log,
      pidFile: join(work, `service-${Date.now()}.pid`),
      url: URL,
    });
  };
  const registrations = async (): Promise<{ mac: string; vmName: string; generation: number; ip: string }[]> => {
    const response = await fetch(`${URL}/v1/registrations`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    return (
      (await response.json()) as { registrations: { mac: string; vmName: string; generation: number; ip: string }[] }
    ).registrations;
  };
  const registered = async (mac: string) => (await registrations()).find((r) => r.mac === mac);
  const DOMAIN2 = `${p}vm2`;
  const MAC2 = randomMac();
  let guests: Guests | undefined;
  let vm: Guest;
  let vm2: Guest;
  /** The NIC as the VM launcher renders it (the project's renderer), on the test's libvirt network. */
  const nic = (mac: string) => ({ mac, xml: renderInterfaceXml({ network: parseSite(site).networks[0]!, mac }) });
  /** Each VM's UUID, fixed before it starts: the launcher places it on this host first. */
  const UUIDS: Record<string, string> = { [DOMAIN]: randomUUID(), [DOMAIN2]: randomUUID() };

  beforeAll(async () => {
    bundleHook();
    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-hook-`));
    await chmod(work, 0o755);
    guests = new Guests(work);
    paths = {
      site: join(work, 'site.json'),
      store: join(work, 'backend.db'),
      state: join(work, 'state'),
      log: join(work, 'service.log'),
      spool: join(work, 'spool'),
    };
    await writeFile(paths.site, JSON.stringify(site));

    // Daemons: start only what is not running, and remember it.
    if ((await pidOf('ovs-vswitchd')) === undefined) {
      await execa('/usr/share/openvswitch/scripts/ovs-ctl', ['start', '--system-id=random', '--no-monitor']);
      started.push('ovs');
    }
    if ((await pidOf('virtlogd')) === undefined) {
      await execa('virtlogd', ['-d']);
      started.push('virtlogd');
    }

    // The backend namespace: a leg on the bridge (tag 1081), the management link, an uplink.
    backend = await Netns.create(`${p}-bk`);
    bridge = await OvsBridge.create(`${p}bs`);
    await vethPair({ name: `${p}r1` }, { name: `${p}g1`, netns: backend }, { txOff: true });
    await bridge.addAccessPort(`${p}r1`, 1081);
    await backend.run('ip', ['addr', 'add', '192.168.128.1/17', 'dev', `${p}g1`]);
    await vethPair({ name: `${p}m0` }, { name: `${p}m1`, netns: backend });
    await execa('ip', ['addr', 'add', `${ROOT_IP}/30`, 'dev', `${p}m0`]);
    await backend.run('ip', ['addr', 'add', `${API_IP}/30`, 'dev', `${p}m1`]);
    await backend.run('ip', ['link', 'add', `${p}up`, 'type', 'veth', 'peer', 'name', `${p}uq`]);
    await backend.run('ip', ['link', 'set', `${p}up`, 'up']);

    const issued = await execa(process.execPath, [
      CLI,
      '--json',
      'backend',
      'token',
      'add',
      'kvm-1',
      '--store',
      paths.store,
    ]);
    token = (JSON.parse(issued.stdout) as { token: string }).token;
    const admin = await execa(process.execPath, [
      CLI,
      '--json',
      'backend',
      'token',
      'add',
      'ops',
      '--admin',
      '--store',
      paths.store,
    ]);
    adminToken = (JSON.parse(admin.stdout) as { token: string }).token;
    await startService();

    // The libvirt network, from the project's XML.
    const parsed = parseSite(site);
    await writeFile(join(work, 'net.xml'), renderNetworkXml(parsed, parsed.networks[0]!));
    await virsh('net-define', join(work, 'net.xml'));
    await virsh('net-start', NET);

    // The hooks, as the README says: install, configure, restart libvirtd.
    await writeFile(join(work, 'host.token'), token, { mode: 0o600 });
    // A probe run by libvirt after ours at `start` (qemu.d runs after qemu): what the backend knows before the guest runs.
    const probe = `#!/bin/sh\n[ "$1" = "${DOMAIN}" ] && [ "$2" = start ] || exit 0\n${process.execPath} -e "fetch('${URL}/v1/registrations', { headers: { authorization: 'Bearer ${token}' } }).then((r) => r.text()).then((t) => require('fs').writeFileSync('${work}/probe-start.json', t))" >/dev/null 2>&1\nexit 0\n`;
    hooks = await installLabHooks(
      {
        hostId: 'kvm-1',
        backend: { url: URL, tokenFile: join(work, 'host.token'), insecure: true },
        networks: [{ name: NET, bridge: `${p}bs` }],
        timeouts: { requestMs: 1000, hookMs: 2000 },
        spoolDir: paths.spool,
        syslog: false,
      },
      [[`zz-${p}-probe`, probe]],
    );
  }, 120_000);

  afterAll(async () => {
    await guests?.destroyAll();
    await virsh('net-destroy', NET).catch(() => {});
    await virsh('net-undefine', NET).catch(() => {});
    await hooks?.restore();
    await service?.stop();
    await bridge?.remove();
    await backend?.remove();
    if (started.includes('virtlogd')) {
      const pid = await pidOf('virtlogd');
      if (pid !== undefined) await endPid(pid);
    }
    if (started.includes('ovs')) await execa('/usr/share/openvswitch/scripts/ovs-ctl', ['stop'], { reject: false });
    if (process.env.KEEP_LAB_LOG === undefined && work) await rm(work, { recursive: true, force: true });
    else if (work) console.log(`lab files kept in ${work}`);
  }, 120_000);

  it('registers the VMs at start, before the guest runs, and each guest leases the reserved address', async () => {
    // The VM launcher places both VMs on this host before starting them: only then may its hook register them.
    for (const uuid of Object.values(UUIDS)) {
      const placed = await fetch(`${URL}/v1/vms/${uuid}/placement`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ hosts: ['kvm-1'] }),
      });
      expect(placed.status).toBe(200);
    }
    [vm, vm2] = await Promise.all([
      guests!.boot({ name: DOMAIN, uuid: UUIDS[DOMAIN]!, nic: nic(MAC) }),
      guests!.boot({ name: DOMAIN2, uuid: UUIDS[DOMAIN2]!, nic: nic(MAC2) }),
    ]);
    const registration = await registered(MAC);
    expect(registration).toMatchObject({ vmName: DOMAIN });
    expect(await registered(MAC2)).toMatchObject({ vmName: DOMAIN2 });
    // What the backend held when libvirt ran the hooks at `start`, before the guest's first instruction.
    const probe = JSON.parse(await readFile(join(work, 'probe-start.json'), 'utf8')) as {
      registrations: { mac: string }[];
    };
    expect(probe.registrations.map((r) => r.mac)).toContain(MAC);
    // Seen from inside: the guest's DHCP client got the reserved address (dnsmasq answers known MACs only).
    expect(vm.ip).toBe(registration!.ip);
    expect(vm2.ip).toBe((await registered(MAC2))!.ip);
    // ... and dnsmasq's lease file agrees.
    const files = readdirSync(paths.state, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('leases'));
    const lines = files.flatMap((f) => readFileSync(join(paths.state, f), 'utf8').split('\n'));
    expect(lines.find((line) => line.includes(MAC))?.split(' ')[2]).toBe(registration!.ip);
  }, 120_000);

  it('a hot-plugged NIC is registered and leases its address in the guest; unplugged, it is deregistered', async () => {
    const mac = randomMac();
    await vm.attachNic(nic(mac));
    const registration = await until('the hot-plugged NIC registered', () => registered(mac), 10_000);
    expect(registration).toMatchObject({ vmName: DOMAIN });
    // The guest sees a second virtio NIC and gets that NIC's own reserved address on it.
    const lease = await vm.sh(
      'for i in $(seq 50); do [ -e /sys/class/net/eth1 ] && break; sleep 0.2; done; ip link set eth1 up; udhcpc -i eth1 -n -q -t 10 -T 1 -s /bin/true 2>&1',
      30,
    );
    expect(lease).toContain(`lease of ${registration!.ip} obtained`);
    // The guest ejects the PCI device (ACPI); the live XML shows an OVS network interface as type='bridge'.
    await vm.detachNic(mac);
    await until(
      'the unplugged NIC deregistered',
      async () => ((await registered(mac)) === undefined ? true : undefined),
      30_000,
    );
    expect(
      await vm.sh('for i in $(seq 50); do [ -e /sys/class/net/eth1 ] || break; sleep 0.2; done; ls /sys/class/net'),
    ).not.toContain('eth1');
    expect(await registered(MAC)).toBeDefined();
  }, 90_000);

  it('host reconcile (libvirt API) restores a registration the backend lost', async () => {
    // Lose it: a deregistration at the registration's own generation (an older reconcile would respect a newer one).
    const held = await registered(MAC);
    expect(held).toBeDefined();
    await fetch(`${URL}/v1/deregister`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mac: MAC, network: NET, generation: held!.generation }),
    });
    expect(await registered(MAC)).toBeUndefined();
    const run = await execa(process.execPath, [CLI, '--json', 'host', 'reconcile', '--config', CONFIG], {
      reject: false,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      added: 1,
      removed: 0,
      nics: expect.arrayContaining([
        expect.objectContaining({ mac: MAC, network: NET, vmName: DOMAIN }),
        expect.objectContaining({ mac: MAC2, network: NET, vmName: DOMAIN2 }),
      ]),
    });
    expect(await registered(MAC)).toBeDefined();
  }, 60_000);

  it('libvirtd restarted while the VMs run: still registered (reconnect registers again)', async () => {
    const before = await registered(MAC);
    expect(before).toBeDefined();
    await restartLibvirtd();
    const after = await until(
      'reconnect',
      async () => {
        const r = await registered(MAC);
        return r && r.generation > before!.generation ? r : undefined;
      },
      20_000,
    );
    expect(after).toMatchObject({ ip: before!.ip, vmName: DOMAIN });
    expect(await registered(MAC2)).toBeDefined();
    // The guest never noticed: its address still answers through the backend's leg, and it renews it.
    expect(await vm.sh('ping -c 1 -W 3 192.168.128.1 >/dev/null && udhcpc -i eth0 -n -q -t 5 -T 1 2>&1')).toContain(
      `lease of ${before!.ip} obtained`,
    );
  }, 60_000);

  it('virsh destroy deregisters', async () => {
    await vm.destroy();
    expect(await registered(MAC)).toBeUndefined();
    expect(await registered(MAC2)).toBeDefined();
  }, 60_000);

  it('backend down during a stop: destroy returns within the bound, spooled; backend back + host flush delivers it', async () => {
    await service!.stop();
    const t = performance.now();
    await vm2.destroy();
    expect(performance.now() - t).toBeLessThan(2 * 2000 + 1000); // stopped and release, each within its 2 s bound
    const spooled = readdirSync(join(paths.spool, 'events')).filter((f) => f.endsWith('-deregister.json'));
    expect(spooled.length).toBeGreaterThan(0);
    await startService();
    expect(await registered(MAC2)).toBeDefined();
    const flush = await execa(process.execPath, [CLI, 'host', 'flush', '--config', CONFIG], { reject: false });
    expect(flush.exitCode, flush.stderr).toBe(0);
    expect(await registered(MAC2)).toBeUndefined();
    expect(readdirSync(join(paths.spool, 'events')).filter((f) => f.endsWith('.json'))).toEqual([]);
  }, 90_000);
});
