/**
 * Issue 15's acceptance, against the real programs: two libvirtd "hosts" on
 * this machine (two-libvirtd.ts), the real lab guest, `virsh migrate --live`
 * A → B → A.
 *
 * The plain baseline: a guest on a plain OVS bridge NIC (a segment ticrypt-net
 * does not manage), pinged every 10 ms from a namespace on the same segment
 * while it migrates; its lost pings are what the migration itself costs here.
 *
 *     pinger ns ── <p>apln ══ patch (trunk 1090) ══ <p>bpln
 *                     │                                │
 *               guest on host a      →→ migrate →→   host b
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chmod } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Guest, Guests } from './guest/guest.js';
import { runPrefix } from './names.js';
import { Netns } from './netns.js';
import { Pinger, type PingCount } from './pinger.js';
import { labAvailable } from './prereq.js';
import { type LabHost, TwoHosts } from './two-libvirtd.js';
import { vethPair } from './veth.js';

const available = labAvailable('ovs-vsctl', 'virsh', 'libvirtd', 'unshare', 'ip', 'ethtool', 'ping');
const PLAIN_VLAN = 1090;
const PLAIN = { guest: '192.168.123.10', pinger: '192.168.123.2' };

describe.skipIf(!available)('live migration between two libvirtds (lab)', () => {
  const p = runPrefix();
  let hosts: TwoHosts | undefined;
  let pingerNs: Netns | undefined;
  let work = '';
  let guests: Guests | undefined;
  let plain: Guest | undefined;
  const losses: { plain: PingCount[] } = { plain: [] };

  const two = () => {
    if (hosts === undefined) throw new Error('the hosts were not built');
    return hosts;
  };
  /** A NIC on host `h`'s bridge of segment `key`, with a tap name of that host's. */
  const nicXml = (h: LabHost, key: string, mac: string, vlan: number, n: number) =>
    [
      `<interface type='bridge'>`,
      `  <source bridge='${h.bridge(p, key)}'/>`,
      `  <virtualport type='openvswitch'/>`,
      `  <vlan><tag id='${vlan}'/></vlan>`,
      `  <mac address='${mac}'/>`,
      `  <target dev='${p}${h.name}v${n}'/>`,
      `  <model type='virtio'/>`,
      `</interface>`,
      '',
    ].join('\n');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-mig-`));
    await chmod(work, 0o755);
    hosts = await TwoHosts.create(p, { segments: [{ key: 'pln', vlans: [PLAIN_VLAN] }] });
    pingerNs = await Netns.create(`${p}-png`);
    await vethPair({ name: `${p}png` }, { name: 'eth0', netns: pingerNs }, { txOff: true });
    await execa('ovs-vsctl', ['--timeout=10', 'add-port', hosts.a.bridge(p, 'pln'), `${p}png`, `tag=${PLAIN_VLAN}`]);
    await pingerNs.run('ip', ['addr', 'add', `${PLAIN.pinger}/24`, 'dev', 'eth0']);
    guests = new Guests(work, hosts.a);
    const mac = '52:54:00:b5:00:01';
    plain = await guests.boot({
      name: `${p}pln`,
      nic: { mac, xml: nicXml(hosts.a, 'pln', mac, PLAIN_VLAN, 0) },
      net: { address: `${PLAIN.guest}/24` },
    });
  }, 180_000);

  afterAll(async () => {
    await guests?.destroyAll();
    await hosts?.remove();
    await execa('ip', ['link', 'del', `${p}png`], { reject: false });
    await pingerNs?.remove();
    if (work) await rm(work, { recursive: true, force: true });
    if (losses.plain.length > 0) {
      console.log(`migration: lost pings at 10 ms, plain OVS: ${losses.plain.map((c) => c.lost).join(', ')}`);
    }
  });

  /** Migrate `guest` from `from` to the other host while pinging it from `ns`; the ping count. */
  async function migratePinged(guest: Guest, from: LabHost, ns: Netns, address: string): Promise<PingCount> {
    const pinger = await Pinger.start(ns, address);
    await new Promise((r) => setTimeout(r, 500));
    const { ms } = await two().migrate(guest.name, from);
    guest.movedTo(two().other(from));
    // The guest answers again from the destination: let a second of replies come in.
    const after = pinger.replies;
    const deadline = Date.now() + 15_000;
    while (pinger.replies < after + 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const count = await pinger.stop();
    console.log(
      `migrate ${guest.name} ${from.name}->${two().other(from).name}: job ${ms} ms, ` +
        `${count.lost} of ${count.sent} pings lost (longest gap ${count.longestGap})`,
    );
    return count;
  }

  it('migrates a guest on a plain OVS bridge A -> B -> A: it runs where it went, answers pings throughout but a few', async () => {
    const guest = plain!;
    const { a, b } = two();
    expect(await a.domains()).toEqual([guest.name]);
    const there = await migratePinged(guest, a, pingerNs!, PLAIN.guest);
    expect([await a.domains(), await b.domains()]).toEqual([[], [guest.name]]);
    // Host b's port carries the guest now; host a's is gone.
    const ports = async (bridge: string) =>
      (await execa('ovs-vsctl', ['list-ports', bridge])).stdout.split('\n').filter(Boolean);
    expect(await ports(b.bridge(p, 'pln'))).toContain(`${p}bv0`);
    expect(await ports(a.bridge(p, 'pln'))).not.toContain(`${p}av0`);
    const back = await migratePinged(guest, b, pingerNs!, PLAIN.guest);
    expect([await a.domains(), await b.domains()]).toEqual([[guest.name], []]);
    losses.plain.push(there, back);
    for (const count of [there, back]) {
      expect(count.received).toBeGreaterThan(100);
      // A positive control for the count itself: the migration is not free, but it is not an outage either.
      expect(count.lost).toBeLessThan(count.sent / 2);
    }
  }, 180_000);
});
