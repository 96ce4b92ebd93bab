import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programRunner } from '../../src/exec/run.js';
import { observeForPin, pinNics, type PinNic } from '../../src/portsec/pin.js';
import { cli } from '../support/cli.js';
import { LabResources, labSiteYaml, pings, vsctl, writeLabSite, type LabNetwork } from './host-lab.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';

const lab = labAvailable('ovs-vsctl', 'virsh', 'ip', 'ethtool', 'ping');

/**
 * Two lab hosts on one OVS: host A's networks in vlan mode (veths named like
 * VLAN sub-interfaces stand in for them), host B's in trunk mode (a veth
 * stands in for the bond). A third bridge plays the physical switch: access
 * ports where a kernel would tag (A's sub-interfaces, the backend's VLAN
 * interfaces), a trunk to B's bond. Each host is set up by `host apply`
 * from its own site file (one libvirtd serves both, so names differ).
 */
describe.skipIf(!lab)('two lab hosts and a backend: VLANs over vlan and trunk uplinks', () => {
  const p = runPrefix();
  const res = new LabResources();
  const switchBr = `${p}sw`;
  const netsA: LabNetwork[] = [
    { name: `${p}a-secure`, preset: 'secure', bridge: `${p}as`, mode: 'vlan' },
    { name: `${p}a-service`, preset: 'service', bridge: `${p}av`, mode: 'vlan' },
  ];
  const netsB: LabNetwork[] = [
    { name: `${p}b-secure`, preset: 'secure', bridge: `${p}bs`, mode: 'trunk' },
    { name: `${p}b-service`, preset: 'service', bridge: `${p}bv`, mode: 'trunk' },
  ];
  const ns = (n: string) => `${p}${n}`;

  const pins: PinNic[] = [];
  const gatewayMacs = new Map<number, string>();

  /** A namespace with eth0 on `bridge` as a VM port of `vlan` (as libvirt makes it), to be pinned to `cidr`'s address. */
  async function endpoint(name: string, bridge: string, vlan: number, cidr: string): Promise<void> {
    await res.netns(ns(name));
    await res.veth(`${p}${name}h`, 'eth0', { bNetns: ns(name) });
    const mac = (await execa('ip', ['netns', 'exec', ns(name), 'cat', '/sys/class/net/eth0/address'])).stdout.trim();
    const vm = `0b1d2c3e-0000-4000-8000-${Buffer.from(name).toString('hex').padStart(12, '0')}`;
    await vsctl(
      ...['add-port', bridge, `${p}${name}h`, `tag=${vlan}`],
      ...['--', 'set', 'interface', `${p}${name}h`, `external_ids:iface-id=${p}-${name}`],
      ...[`external_ids:attached-mac="${mac}"`, `external_ids:vm-id=${vm}`],
    );
    await execa('ip', ['netns', 'exec', ns(name), 'ip', 'addr', 'add', cidr, 'dev', 'eth0']);
    pins.push({ mac, vmUuid: vm, bridge, ip: cidr.split('/')[0]!, gatewayMac: gatewayMacs.get(vlan)! });
  }

  beforeAll(async () => {
    const dir = await res.tempDir();
    res.bridges.push(switchBr);
    await vsctl('add-br', switchBr, '--', 'set', 'bridge', switchBr, 'datapath_type=netdev');
    // Host A: VLAN sub-interface stand-ins, access ports on the switch.
    for (const vlan of [1081, 1082]) {
      await res.veth(`${p}a.${vlan}`, `${p}ka${vlan}`);
      await vsctl('add-port', switchBr, `${p}ka${vlan}`, `tag=${vlan}`);
    }
    // Host B: the bond stand-in, a trunk on the switch.
    await res.veth(`${p}b`, `${p}kb`);
    await vsctl('add-port', switchBr, `${p}kb`, 'trunks=1081,1082');
    const siteA = await writeLabSite(res, dir, 'a.yaml', labSiteYaml(p, 'a', `${p}a`, netsA), netsA);
    const siteB = await writeLabSite(res, dir, 'b.yaml', labSiteYaml(p, 'b', `${p}b`, netsB), netsB, [`${p}bu`]);
    for (const [site, host] of [
      [siteA, 'a'],
      [siteB, 'b'],
    ] as const) {
      const result = await cli(
        'host',
        'apply',
        '--site',
        site,
        '--host',
        host,
        '--datapath',
        'netdev',
        '--uplink-bridge',
        `${p}bu`,
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    }
    // The backend: one interface per VLAN with the gateway address.
    await res.netns(ns('gw'));
    for (const [vlan, iface, cidr] of [
      [1081, 'gsec', '192.168.128.1/17'],
      [1082, 'gsvc', '192.168.122.1/24'],
    ] as const) {
      await res.veth(`${p}g${vlan}`, iface, { bNetns: ns('gw') });
      await vsctl('add-port', switchBr, `${p}g${vlan}`, `tag=${vlan}`);
      await execa('ip', ['netns', 'exec', ns('gw'), 'ip', 'addr', 'add', cidr, 'dev', iface]);
      const mac = (await execa('ip', ['netns', 'exec', ns('gw'), 'cat', `/sys/class/net/${iface}/address`])).stdout;
      gatewayMacs.set(vlan, mac.trim());
    }
    await endpoint('e1', `${p}as`, 1081, '192.168.129.10/17');
    await endpoint('e2', `${p}bs`, 1081, '192.168.129.20/17');
    // On service, but with a secure address: only a VLAN leak could let it reach secure endpoints.
    await endpoint('e3', `${p}av`, 1082, '192.168.129.30/17');
    await endpoint('e4', `${p}bv`, 1082, '192.168.122.40/24');
    // e3's control: the same (misused) subnet on the service VLAN of host B.
    await endpoint('e5', `${p}bv`, 1082, '192.168.129.31/17');
    // Pinned as the hook pins a VM at start (with its bridge's program, which the hook installs too).
    const run = programRunner();
    const context = { run, timeoutMs: () => 10_000 };
    const pinned = await pinNics(context, await observeForPin(context, pins), pins);
    expect(pinned.outcomes.map((o) => o.result)).toEqual(pins.map(() => 'pinned'));
  });
  afterAll(() => res.cleanup());

  it('secure endpoints on different hosts reach the gateway, and (peers: gateway) not each other', async () => {
    expect(await pings(ns('e1'), '192.168.128.1', 5)).toBe(true);
    expect(await pings(ns('e2'), '192.168.128.1', 5)).toBe(true);
    expect(await pings(ns('e1'), '192.168.129.20', 1)).toBe(false);
    expect(await pings(ns('e2'), '192.168.129.10', 1)).toBe(false);
  });

  it('the service VLAN reaches its gateway over the trunk', async () => {
    expect(await pings(ns('e4'), '192.168.122.1', 5)).toBe(true);
  });

  it('nothing crosses between VLANs (the service VLAN, flat L2 by peers: all, spans the hosts)', async () => {
    expect(await pings(ns('e3'), '192.168.129.31', 5)).toBe(true);
    for (const target of ['192.168.129.10', '192.168.129.20', '192.168.128.1']) {
      expect(await pings(ns('e3'), target, 1)).toBe(false);
    }
  });
});
