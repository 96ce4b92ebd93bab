/**
 * Issue 15's acceptance, against the real programs: two libvirtd "hosts" on
 * this machine (two-libvirtd.ts), each with ticrypt-net's hooks installed by
 * `hook install` (its own host id and token) and its secure network set up
 * by `host apply` (port security, peers=gateway) on a bridge of its own, both
 * bridges on the "physical switch" where the backend (`backend serve`: nft,
 * dnsmasq, the API, the SSH forwards) has its leg; the real lab guest,
 * migrated live A → B → A with `virsh migrate --live`.
 *
 *     host a: <p>asec ── <p>a.1081 ═ <p>ka (1081) ──┐
 *     host b: <p>bsec ── <p>b.1081 ═ <p>kb (1081) ──┤ switch <p>br ── <p>r1 (1081) ═ <p>g1 backend ── <p>up ═ eth0 internet
 *                                                                                       │                  client 203.0.113.50
 *                                                                        root <p>m0 ═ <p>m1 (API)           server 203.0.113.10:9000
 *     plain:  pinger ns ── <p>apln ══ patch (trunk 1090) ══ <p>bpln   (no ticrypt-net)
 *
 * The plain baseline, in the same run: a guest on a plain OVS bridge NIC
 * ticrypt-net does not manage, pinged every 10 ms from a namespace while it
 * migrates; its lost pings are what the migration itself costs here. The
 * secure guest has a second NIC on that plain segment, pinged in the same
 * migrations as its ticrypt-net NIC (from the backend): the downtime of a
 * migration varies (140–280 ms here, LAB.md), so the comparison is made
 * within one migration: the managed NIC may lose 2 pings more at most.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_URL, BackendLab, UPLINK_IPS, labUuid } from './backend-lab.js';
import { COUNTER_LOOP, CounterStream } from './counter-stream.js';
import { type Guest, Guests } from './guest/guest.js';
import { until } from './libvirt-hooks.js';
import { runPrefix } from './names.js';
import { Netns } from './netns.js';
import { Pinger, type PingCount } from './pinger.js';
import { labAvailable } from './prereq.js';
import { CLI } from './service.js';
import { sshArgs } from './ssh-session.js';
import { type HostName, type LabHost, TwoHosts } from './two-libvirtd.js';
import { vethPair } from './veth.js';

const available = labAvailable(
  ...['ovs-vsctl', 'ovs-ofctl', 'virsh', 'libvirtd', 'unshare', 'ip', 'ethtool', 'ping'],
  ...['nft', 'dnsmasq', 'conntrack', 'perl', 'socat', 'ssh'],
);
const PLAIN_VLAN = 1090;
/** The plain segment: the plain guest, the secure guest's second (plain) NIC, the pinger. */
const PLAIN = { guest: '192.168.123.10', second: '192.168.123.11', pinger: '192.168.123.2' };
const BACKEND = UPLINK_IPS[0];
const CLIENT = '203.0.113.50';
const SERVER = '203.0.113.10';
const SERVER_PORT = 9000;
const HOOK_MS = 2000;
const SECURE = { mac: '52:54:00:b5:00:02', vm: labUuid(0xb502) };
const PLAIN_MAC = '52:54:00:b5:00:01';
const SECOND_MAC = '52:54:00:b5:00:03';
const ofctl = (...args: string[]) => execa('ovs-ofctl', ['-O', 'OpenFlow14', '--no-names', ...args]);

describe.skipIf(!available)('live migration between two libvirtds with ticrypt-net (lab)', () => {
  const p = runPrefix();
  const NET = `${p}sec`;
  let backendLab: BackendLab<never, 'sg'> | undefined;
  let hosts: TwoHosts | undefined;
  let pingerNs: Netns | undefined;
  let work = '';
  let guests: Guests | undefined;
  let plain: Guest | undefined;
  let secure: Guest | undefined;
  let server: CounterStream | undefined;
  let ssh: CounterStream | undefined;
  /** Lost pings per migration: the plain guest; the secure guest's managed NIC and, in the same migration, its plain NIC. */
  const losses: { plain: PingCount[]; secure: PingCount[]; second: PingCount[] } = {
    plain: [],
    secure: [],
    second: [],
  };

  const two = () => {
    if (hosts === undefined) throw new Error('the hosts were not built');
    return hosts;
  };
  const lab = () => {
    if (backendLab === undefined) throw new Error('the backend lab was not built');
    return backendLab;
  };
  /** A NIC XML with a tap name of host `h`'s (names must differ per host). */
  const nicXml = (h: LabHost, source: string, mac: string, n: number) =>
    [
      ...source.split('\n'),
      `  <mac address='${mac}'/>`,
      `  <target dev='${p}${h.name}v${n}'/>`,
      `  <model type='virtio'/>`,
      `</interface>`,
      '',
    ].join('\n');
  const plainNic = (h: LabHost, mac = PLAIN_MAC, n = 0) =>
    nicXml(
      h,
      [
        `<interface type='bridge'>`,
        `  <source bridge='${h.bridge(p, 'pln')}'/>`,
        `  <virtualport type='openvswitch'/>`,
        `  <vlan><tag id='${PLAIN_VLAN}'/></vlan>`,
      ].join('\n'),
      mac,
      n,
    );
  const secureNic = (h: LabHost) =>
    nicXml(h, [`<interface type='network'>`, `  <source network='${NET}'/>`].join('\n'), SECURE.mac, 1);

  /** The NIC's registration as the backend holds it now (admin view), or undefined. */
  const registration = async () => {
    const { status, json } = await lab().call('GET', '/v1/registrations', 'ops');
    expect(status, JSON.stringify(json)).toBe(200);
    const all = (Array.isArray(json) ? json : json.registrations) as Record<string, unknown>[];
    return all.find((r) => r.mac === SECURE.mac && r.network === NET);
  };
  /** Flows on host `h`'s secure bridge that name the secure guest's MAC (port security pins it by MAC). */
  const pinned = async (h: HostName) =>
    (await ofctl('dump-flows', `${p}${h}sec`)).stdout.split('\n').filter((line) => line.includes(SECURE.mac));
  /** The SSH forward's port on the backend for the secure guest. */
  const sshPort = async () => {
    const { json } = await lab().call('GET', `/v1/vms/${SECURE.vm}/ssh`, 'ops');
    return (json.forwards as { port: number }[])[0]?.port;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-mig-`));
    await chmod(work, 0o755);
    backendLab = await BackendLab.create<never, 'sg'>(p, {
      site: {
        networks: {
          [NET]: {
            preset: 'secure',
            peers: 'gateway',
            ssh: { ports: '22200-22209', sources: ['203.0.113.0/24'] },
          },
        },
      },
      vms: {},
      guests: { sg: { network: NET, mac: SECURE.mac, vm: SECURE.vm } },
      internet: [`${CLIENT}/24`, `${SERVER}/24`],
      tokens: { 'kvm-a': [], 'kvm-b': [], ops: ['--admin'] },
    });
    await lab().startService();
    hosts = await TwoHosts.create(p, {
      segments: [{ key: 'pln', vlans: [PLAIN_VLAN] }],
      hooks: (h) => ({
        config: {
          hostId: `kvm-${h}`,
          backend: { url: API_URL, insecure: true },
          networks: [{ name: NET, bridge: `${p}${h}sec`, requireRegistration: false }],
          timeouts: { requestMs: 1000, hookMs: HOOK_MS },
          syslog: false,
        },
        token: lab().tokens[`kvm-${h}`]!,
      }),
    });
    // Each host's secure network by `host apply` (its bridge, port security, the libvirt network), uplinked to the switch.
    for (const h of [two().a, two().b]) {
      const uplink = `${p}${h.name}`;
      await vethPair({ name: `${uplink}.1081` }, { name: `${p}k${h.name}` }, { txOff: true });
      await execa('ovs-vsctl', ['--timeout=10', 'add-port', lab().bridge!.name, `${p}k${h.name}`, 'tag=1081']);
      const site = join(work, `site-${h.name}.yaml`);
      await writeFile(
        site,
        `name: ${p}\nhosts:\n  ${h.name}: { uplink: ${uplink} }\nnetworks:\n  ${NET}: ` +
          `{ preset: secure, bridge: ${p}${h.name}sec, uplink: { mode: vlan }, gatewayInterface: ${p}g1, peers: gateway }\n`,
      );
      two().bridges.push(`${p}${h.name}sec`);
      const run = await execa(
        process.execPath,
        [
          ...[CLI, 'host', 'apply', '--site', site, '--host', h.name, '--datapath', 'netdev'],
          ...['--config', h.hookConfig, '--connect', h.uri],
        ],
        { reject: false },
      );
      expect(run.exitCode, run.stderr + run.stdout).toBe(0);
    }
    // The plain segment's pinger.
    pingerNs = await Netns.create(`${p}-png`);
    await vethPair({ name: `${p}png` }, { name: 'eth0', netns: pingerNs }, { txOff: true });
    await execa('ovs-vsctl', ['--timeout=10', 'add-port', two().a.bridge(p, 'pln'), `${p}png`, `tag=${PLAIN_VLAN}`]);
    await pingerNs.run('ip', ['addr', 'add', `${PLAIN.pinger}/24`, 'dev', 'eth0']);
    // The secure guest is placed on host a and may get to one server; then both guests boot on host a.
    await lab().place(SECURE.vm, ['kvm-a']);
    await lab().allow('sg', [{ address: SERVER, protocol: 'tcp', ports: SERVER_PORT }]);
    guests = new Guests(work, two().a);
    [plain, secure] = await Promise.all([
      guests.boot({
        name: `${p}pln`,
        nic: { mac: PLAIN_MAC, xml: plainNic(two().a) },
        net: { address: `${PLAIN.guest}/24` },
      }),
      guests.boot({ name: `${p}sg`, uuid: SECURE.vm, nic: { mac: SECURE.mac, xml: secureNic(two().a) }, ssh: true }),
    ]);
    // The secure guest's second NIC, on the plain segment: the same migration's loss without ticrypt-net.
    await secure!.attachNic({ mac: SECOND_MAC, xml: plainNic(two().a, SECOND_MAC, 2) });
    await secure!.sh(
      [
        `for i in $(seq 50); do n=$(grep -l ${SECOND_MAC} /sys/class/net/*/address | cut -d/ -f5); [ -n "$n" ] && break; sleep 0.2; done`,
        `ip addr add ${PLAIN.second}/24 dev $n && ip link set $n up`,
      ].join('\n'),
    );
  }, 240_000);

  afterAll(async () => {
    await ssh?.stop();
    await server?.stop();
    await guests?.destroyAll();
    await hosts?.remove();
    for (const link of [`${p}png`, `${p}a.1081`, `${p}b.1081`])
      await execa('ip', ['link', 'del', link], { reject: false });
    await pingerNs?.remove();
    await backendLab?.remove();
    if (work) await rm(work, { recursive: true, force: true });
    const list = (counts: PingCount[]) => counts.map((c) => c.lost).join(', ') || 'none';
    console.log(
      `migration: lost pings at 10 ms per migration (A->B, B->A): plain guest ${list(losses.plain)}; ` +
        `secure guest, its ticrypt-net NIC ${list(losses.secure)}, its plain NIC in the same migrations ${list(losses.second)}`,
    );
  });

  /** Migrate `guest` from `from` to the other host while pinging each `[ns, address]`; the ping counts. */
  async function migratePinged(guest: Guest, from: LabHost, targets: readonly (readonly [Netns, string])[]) {
    const pingers = await Promise.all(targets.map(([ns, address]) => Pinger.start(ns, address)));
    await sleep(500);
    const started = Date.now();
    const { ms } = await two().migrate(guest.name, from);
    guest.movedTo(two().other(from));
    // The guest answers again from the destination: let a second of replies come in.
    const after = pingers.map((x) => x.replies);
    const deadline = Date.now() + 15_000;
    while (pingers.some((x, i) => x.replies < after[i]! + 100) && Date.now() < deadline) await sleep(50);
    const counts = await Promise.all(pingers.map((x) => x.stop()));
    console.log(
      `migrate ${guest.name} ${from.name}->${two().other(from).name}: job ${ms} ms, pings lost: ` +
        counts.map((c, i) => `${targets[i]![1]} ${c.lost} of ${c.sent} (longest gap ${c.longestGap})`).join(', '),
    );
    return { counts, started };
  }

  /** Wait until host `h` ran the hook's `release` for the guest after `since` (the source's late stop). */
  const released = (h: LabHost, name: string, since: number) =>
    until(
      `host ${h.name}'s release hook of ${name}`,
      async () =>
        (await h.hookCalls()).some((c) => c.args === `${name} release end -` && c.begin >= since) || undefined,
      30_000,
    );

  it('migrates a guest on a plain OVS bridge A -> B -> A: it runs where it went, answers pings throughout but a few', async () => {
    const guest = plain!;
    const { a, b } = two();
    const ports = async (bridge: string) =>
      (await execa('ovs-vsctl', ['list-ports', bridge])).stdout.split('\n').filter(Boolean);
    const there = await migratePinged(guest, a, [[pingerNs!, PLAIN.guest]]);
    expect([await a.domains(), await b.domains()]).toEqual([[secure!.name], [guest.name]]);
    await released(a, guest.name, there.started);
    expect(await ports(b.bridge(p, 'pln'))).toContain(`${p}bv0`);
    expect(await ports(a.bridge(p, 'pln'))).not.toContain(`${p}av0`);
    const back = await migratePinged(guest, b, [[pingerNs!, PLAIN.guest]]);
    expect(new Set(await a.domains())).toEqual(new Set([guest.name, secure!.name]));
    losses.plain.push(there.counts[0]!, back.counts[0]!);
    for (const count of losses.plain) {
      expect(count.received).toBeGreaterThan(100);
      // A positive control for the count itself: the migration is not free, but it is not an outage either.
      expect(count.lost).toBeLessThan(count.sent / 2);
    }
  }, 180_000);

  it('migrates a registered secure guest A -> B -> A: registration, flows, SSH session, egress connection and pings follow it', async () => {
    const guest = secure!;
    const { a, b } = two();
    // At boot on host a: registered by kvm-a, pinned on a's bridge only.
    const atBoot = await registration();
    expect(atBoot?.hostId).toBe('kvm-a');
    expect(guest.ip).toBe(atBoot?.ip);
    expect((await pinned('a')).length).toBeGreaterThan(0);
    expect(await pinned('b')).toEqual([]);
    // An SSH session through the backend's forwarded port, printing a counter every 100 ms.
    const port = await sshPort();
    expect(port).toBeGreaterThan(0);
    ssh = new CounterStream('ssh', 'ip', await sshArgs(lab().internet, { host: BACKEND, port: port! }, COUNTER_LOOP));
    expect(await ssh.advances(5), ssh.stderr).toBe(true);
    // An established egress connection: the guest streams a counter to the server on the internet.
    server = new CounterStream('server', 'ip', [
      ...['netns', 'exec', lab().internet.name, 'socat', '-u', `TCP-LISTEN:${SERVER_PORT},bind=${SERVER},reuseaddr`],
      'STDOUT',
    ]);
    await sleep(300);
    await guest.spawn(`${COUNTER_LOOP} | nc ${SERVER} ${SERVER_PORT}`, 'egress');
    expect(await server.advances(5), server.stderr).toBe(true);

    // The launcher places the VM on both hosts for the move.
    await lab().place(SECURE.vm, ['kvm-a', 'kvm-b']);
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const moved = await migratePinged(guest, from, [
        [lab().backend, guest.ip!],
        [pingerNs!, PLAIN.second],
      ]);
      losses.secure.push(moved.counts[0]!);
      losses.second.push(moved.counts[1]!);
      expect(await to.domains()).toContain(guest.name);
      expect(await from.domains()).not.toContain(guest.name);
      // The source's late stop has run: the registration is the destination's, with the same address, and was kept.
      await released(from, guest.name, moved.started);
      const now = await registration();
      expect(now?.hostId, JSON.stringify(now)).toBe(`kvm-${to.name}`);
      expect(now?.ip).toBe(atBoot?.ip);
      expect(now?.nicId).toBe(atBoot?.nicId);
      expect(await sshPort()).toBe(port);
      // Flows on the destination's bridge, none left on the source's (its QEMU is gone).
      expect((await pinned(to.name)).length).toBeGreaterThan(0);
      expect(await pinned(from.name)).toEqual([]);
      // The SSH session and the egress connection go on, neither restarted.
      for (const stream of [ssh, server]) {
        expect(await stream.advances(10), `${stream.label}: ${stream.stderr}`).toBe(true);
        expect(stream.exitCode, stream.label).toBeUndefined();
        expect(stream.consecutive(), stream.label).toBe(true);
      }
      console.log(
        `after ${from.name}->${to.name}: longest silence of the SSH counter ${ssh.longestGapMs(moved.started)} ms, ` +
          `of the egress counter ${server.longestGapMs(moved.started)} ms`,
      );
    }
    // No more lost than the same migration's loss on a plain OVS NIC (the guest's second NIC), plus 2 pings.
    for (const [i, count] of losses.secure.entries()) {
      expect(count.received, `migration ${i}`).toBeGreaterThan(100);
      expect(losses.second[i]!.received, `migration ${i}`).toBeGreaterThan(100);
      expect(count.lost, `migration ${i}: plain NIC ${losses.second[i]!.lost}`).toBeLessThanOrEqual(
        losses.second[i]!.lost + 2,
      );
    }
  }, 240_000);

  it('a cancelled migration leaves everything on A: nothing registered for B, no flows on B', async () => {
    const guest = secure!;
    const { a, b } = two();
    const before = await registration();
    expect(before?.hostId).toBe('kvm-a');
    const since = Date.now();
    const job = two().startMigration(guest.name, a, ['--bandwidth', '1']);
    // The destination's start and started hooks have run (the job is under way), then it is aborted.
    await until(
      "host b's started hook",
      async () =>
        (await b.hookCalls()).some((c) => c.args === `${guest.name} started begin -` && c.begin >= since) || undefined,
      60_000,
    );
    await sleep(1000);
    const midway = await registration();
    console.log(`cancelled migration: registration while B prepared: ${JSON.stringify(midway)}`);
    await a.virsh('domjobabort', guest.name);
    const result = await job;
    expect(result.exitCode, result.stdout).not.toBe(0);
    await released(b, guest.name, since);
    expect(await a.domains()).toContain(guest.name);
    expect(await b.domains()).not.toContain(guest.name);
    const after = await registration();
    expect(after?.hostId, JSON.stringify(after)).toBe('kvm-a');
    expect(after).not.toHaveProperty('incomingHost');
    expect(after?.ip).toBe(before?.ip);
    expect((await pinned('a')).length).toBeGreaterThan(0);
    expect(await pinned('b')).toEqual([]);
    // It still works where it is.
    const pinger = await Pinger.start(lab().backend, guest.ip!);
    await sleep(500);
    expect((await pinger.stop()).received).toBeGreaterThan(10);
    for (const stream of [ssh!, server!]) {
      expect(await stream.advances(5), `${stream.label}: ${stream.stderr}`).toBe(true);
      expect(stream.consecutive(), stream.label).toBe(true);
    }
  }, 180_000);

  it('every hook call on both hosts returned within its bound', async () => {
    const calls = [
      ...(await two().a.hookCalls()).map((c) => ({ ...c, host: 'a' })),
      ...(await two().b.hookCalls()).map((c) => ({ ...c, host: 'b' })),
    ];
    const ops = new Set(calls.map((c) => c.args.split(' ')[1]));
    // Both hosts' starts, stops and migrations were seen.
    for (const op of ['prepare', 'start', 'started', 'stopped', 'release', 'migrate']) expect(ops).toContain(op);
    const slowest = [...calls].sort((x, y) => y.ms - x.ms).slice(0, 3);
    console.log(
      `hook calls: ${calls.length}, slowest ${slowest.map((c) => `${c.host}: ${c.args} ${c.ms.toFixed(0)} ms`).join('; ')}`,
    );
    // The bound counts from the hook's own start; the lab's begin and end hooks add a fork each.
    for (const call of calls) expect(call.ms, `${call.host}: ${call.args}`).toBeLessThan(HOOK_MS + 300);
  });
});
