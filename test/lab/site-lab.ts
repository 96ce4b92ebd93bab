/**
 * A bare site in the lab, for the set-up tests (`backend apply` + `host apply`,
 * and the Ansible roles): only the hardware and what the machines' own
 * network configuration provides, nothing of ticrypt-net's.
 *
 *     host a                         "physical switch" <p>sw            backend namespace <p>-bk
 *     <p>u.1081 (vlan mode) ── <p>s1 tag 1081 ──┐                ┌── <p>r1 tag 1081 ── gw-secure
 *     <p>u (trunk parent)  ─── <p>s0 trunks 1082 ┴── OVS netdev ─┴── <p>r2 tag 1082 ── gw-service
 *                                                        root <p>m0 198.18.0.2 ── mgmt0 198.18.0.1 (the API's address)
 *                                                               wan0 203.0.113.1 ── eth0 internet <p>-in: 203.0.113.10 (:80, :443)
 *
 * The lab kernel has no 8021q, so the backend's VLAN interfaces are veths the
 * site names as `gatewayInterface`, and the host's `<p>u.1081` is a veth named
 * like the VLAN interface (the code under test is handed names). VM NICs are
 * veths whose root end is a tagged port of the host's bridge, as libvirt
 * makes them; the test registers them through the API, as the hook does.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { AdminClient } from '../../src/backend/api/admin-client.js';
import { BackendClient } from '../../src/backend/api/client.js';
import { programRunner } from '../../src/exec/run.js';
import { observeForPin, pinNics } from '../../src/portsec/pin.js';
import { Netns } from './netns.js';
import { OvsBridge } from './ovs.js';
import { PeerServers } from './peer-servers.js';
import { configure, dhcpLease, tcpProbe, type TcpProbe } from './probes.js';
import { BackendService } from './service.js';
import { vethPair } from './veth.js';

export const API_IP = '198.18.0.1';
export const API_PORT = 8443;
export const API_URL = `http://${API_IP}:${API_PORT}`;
/** A server on the "internet", and the backend's uplink address (what the server sees after masquerade). */
export const SERVER = '203.0.113.10';
export const UPLINK_IP = '203.0.113.1';

/** The two lab networks: name suffix, preset, VLAN, uplink mode, bridge suffix, backend interface. */
const NETWORKS = [
  { key: 'secure', preset: 'secure', vlan: 1081, mode: 'vlan', bridge: 'sec', gateway: 'gw-secure', subnet: 17 },
  { key: 'service', preset: 'service', vlan: 1082, mode: 'trunk', bridge: 'svc', gateway: 'gw-service', subnet: 24 },
] as const;

/** A bare lab site: hardware, cables, the machines' own addresses; removed by {@link SiteLab.remove}. */
export class SiteLab {
  readonly namespaces: Netns[] = [];
  readonly bridges: string[] = [];
  readonly networks: { readonly name: string; readonly bridge: string; readonly vlan: number }[];
  /** Files of the run: the site, the backend's store and state, the root for files the set-up writes. */
  readonly paths: { site: string; store: string; state: string; log: string; root: string; dir: string };
  private service: BackendService | undefined;
  private servers: PeerServers | undefined;

  private constructor(
    readonly p: string,
    readonly backend: Netns,
    readonly internet: Netns,
    dir: string,
  ) {
    this.networks = NETWORKS.map((n) => ({ name: `${p}-${n.key}`, bridge: `${p}-${n.bridge}`, vlan: n.vlan }));
    this.paths = {
      dir,
      site: join(dir, 'site.yaml'),
      store: join(dir, 'backend.db'),
      state: join(dir, 'state'),
      log: join(dir, 'service.log'),
      root: join(dir, 'root'),
    };
  }

  /** The host's name in the site, its uplink parent, and the shared uplink bridge of trunk-mode networks. */
  get host() {
    return { name: 'a', uplink: `${this.p}u`, uplinkBridge: `${this.p}-upl` };
  }

  /** The site file, the only input of the set-up. */
  siteYaml(): string {
    const lines = [
      `name: ${this.p}`,
      'backend:',
      `  management: { address: ${API_IP}, port: ${API_PORT} }`,
      '  uplink: wan0',
      'hosts:',
      `  ${this.host.name}: { uplink: ${this.host.uplink} }`,
      'networks:',
    ];
    for (const n of NETWORKS) {
      lines.push(
        `  ${this.p}-${n.key}:`,
        `    preset: ${n.preset}`,
        `    bridge: ${this.p}-${n.bridge}`,
        `    uplink: { mode: ${n.mode} }`,
        `    gatewayInterface: ${n.gateway}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }

  /** Build the bare site: namespaces, the switch, every cable, the machines' own addresses, a server. */
  static async create(p: string): Promise<SiteLab> {
    const dir = await mkdtemp(join(tmpdir(), `ticrypt-${p}-`));
    await chmod(dir, 0o755); // dnsmasq reads its host entries as nobody
    const lab = new SiteLab(p, await Netns.create(`${p}-bk`), await Netns.create(`${p}-in`), dir);
    lab.namespaces.push(lab.backend, lab.internet);
    try {
      await writeFile(lab.paths.site, lab.siteYaml());
      const sw = await OvsBridge.create(`${p}sw`);
      lab.bridges.push(sw.name, ...lab.networks.map((n) => n.bridge), lab.host.uplinkBridge);
      for (const [i, n] of NETWORKS.entries()) {
        // The backend's leg on the network's VLAN.
        await vethPair({ name: `${p}r${i + 1}` }, { name: n.gateway, netns: lab.backend }, { txOff: true });
        await sw.addAccessPort(`${p}r${i + 1}`, n.vlan);
      }
      // The host: a VLAN interface stand-in for the vlan-mode network, a trunk parent for the trunk-mode one.
      await vethPair({ name: `${p}u.1081` }, { name: `${p}s1` }, { txOff: true });
      await sw.addAccessPort(`${p}s1`, 1081);
      await vethPair({ name: `${p}u` }, { name: `${p}s0` }, { txOff: true });
      await execa('ovs-vsctl', ['--timeout=10', 'add-port', sw.name, `${p}s0`, 'trunks=1082']);
      // The machines' own configuration: the management link and the uplink with their addresses.
      await vethPair({ name: `${p}m0` }, { name: 'mgmt0', netns: lab.backend });
      await execa('ip', ['addr', 'add', '198.18.0.2/24', 'dev', `${p}m0`]);
      await lab.backend.run('ip', ['addr', 'add', `${API_IP}/24`, 'dev', 'mgmt0']);
      await vethPair({ name: 'wan0', netns: lab.backend }, { name: 'eth0', netns: lab.internet });
      await lab.backend.run('ip', ['addr', 'add', `${UPLINK_IP}/24`, 'dev', 'wan0']);
      await lab.internet.run('ip', ['addr', 'add', `${SERVER}/24`, 'dev', 'eth0']);
      lab.servers = await PeerServers.start(lab.internet, [`${SERVER}:80`, `${SERVER}:443`]);
    } catch (error) {
      await lab.remove();
      throw error;
    }
    return lab;
  }

  /** Start `backend serve` in the backend namespace, as its systemd unit would (this lab has no systemd). */
  async serve(store = this.paths.store): Promise<void> {
    this.service = await BackendService.start({
      netns: this.backend,
      args: [
        ...['backend', 'serve', '--site', this.paths.site, '--store', store, '--state-dir', this.paths.state],
        '--insecure-http',
      ],
      logFile: this.paths.log,
      pidFile: join(this.paths.dir, 'service.pid'),
      url: API_URL,
    });
  }

  /**
   * A VM NIC on network `index`'s bridge, placed on the host (the launcher's
   * admin token), registered with the host's token and pinned (port
   * security) with the answer's address, as the hook does at `start`: a
   * namespace whose veth's root end is a port of the host's bridge, tagged
   * with the network's VLAN and marked as libvirt marks a VM's port. Resolves
   * with the address the API reserved and the lease the VM got by DHCP
   * (configured on its interface).
   */
  async vm(index: 0 | 1, name: string, mac: string, vmUuid: string, tokens: { host: string; admin: string }) {
    const network = this.networks[index] as (typeof this.networks)[number];
    const ns = await Netns.create(`${this.p}-${name}`);
    this.namespaces.push(ns);
    await vethPair({ name: `${this.p}${name}` }, { name: 'eth0', netns: ns }, { txOff: true, mac });
    const port = `${this.p}${name}`;
    await execa('ovs-vsctl', [
      ...['--timeout=10', 'add-port', network.bridge, port, `tag=${network.vlan}`, '--', 'set', 'interface', port],
      ...[`external_ids:attached-mac="${mac}"`, `external_ids:vm-id=${vmUuid}`, `external_ids:iface-id=${vmUuid}`],
    ]);
    await ns.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    await new AdminClient({ url: API_URL, token: tokens.admin }).setPlacement(vmUuid, [this.host.name]);
    const host = new BackendClient({ url: API_URL, token: tokens.host });
    const answer = await host.call<{ ip: string; gatewayMac: string }>('POST', '/v1/register', {
      vmUuid,
      vmName: name,
      mac,
      network: network.name,
      generation: Date.now() * 1000,
    });
    const nic = { mac, vmUuid, bridge: network.bridge, ip: answer.ip, gatewayMac: answer.gatewayMac };
    const context = { run: programRunner(), timeoutMs: () => 10_000 };
    const pinned = await pinNics(context, await observeForPin(context, [nic]), [nic]);
    if (pinned.outcomes[0]?.result !== 'pinned') {
      throw new Error(`site lab: VM ${name} not pinned: ${pinned.error ?? pinned.outcomes[0]?.detail ?? 'no outcome'}`);
    }
    const lease = await dhcpLease(ns, 'eth0', 10);
    const gateway = NETWORKS[index].key === 'secure' ? '192.168.128.1' : '192.168.122.1';
    if (lease !== undefined) await configure(ns, 'eth0', `${lease}/${NETWORKS[index].subnet}`, gateway);
    return { ns, reserved: answer.ip, lease, probe: (port: number): Promise<TcpProbe> => tcpProbe(ns, SERVER, port) };
  }

  /** Stop what it started and remove everything it created, by name. Never throws. */
  async remove(): Promise<void> {
    await this.service?.stop().catch(() => undefined);
    await this.servers?.stop().catch(() => undefined);
    for (const bridge of this.bridges) await execa('ovs-vsctl', ['--if-exists', 'del-br', bridge], { reject: false });
    for (const link of [`${this.p}u.1081`, `${this.p}u`, `${this.p}m0`, `${this.p}r1`, `${this.p}r2`]) {
      await execa('ip', ['link', 'del', link], { reject: false });
    }
    for (const network of this.networks) {
      await execa('virsh', ['-c', 'qemu:///system', 'net-destroy', network.name], { reject: false });
      await execa('virsh', ['-c', 'qemu:///system', 'net-undefine', network.name], { reject: false });
    }
    for (const ns of this.namespaces) await ns.remove();
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}
