/**
 * Issue 15's acceptance, against the real programs (migration-lab.ts): two
 * libvirtd "hosts" on this machine, each with ticrypt-net's hooks (`hook
 * install`, its own host id and token) and its secure network by `host
 * apply`, the backend service on the switch both hosts' bridges are uplinked
 * to, and the real lab guest migrated live A → B → A with `virsh migrate --live`.
 *
 * The plain baseline, in the same run: a guest on a plain OVS bridge NIC
 * ticrypt-net does not manage, pinged every 10 ms from a namespace while it
 * migrates; its lost pings are what the migration itself costs here. The
 * secure guest has a second NIC on that plain segment, pinged in the same
 * migrations as its ticrypt-net NIC (from the backend): the downtime of a
 * migration varies (140–280 ms here, LAB.md), so the comparison is made
 * within one migration: the managed NIC may lose 2 pings more at most.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNTER_LOOP, CounterStream } from './counter-stream.js';
import { until } from './libvirt-hooks.js';
import { BACKEND, HOOK_MS, MigrationLab, PLAIN, SECURE, SERVER, SERVER_PORT } from './migration-lab.js';
import { runPrefix } from './names.js';
import type { PingCount } from './pinger.js';
import { Pinger } from './pinger.js';
import { labAvailable } from './prereq.js';
import { sshArgs } from './ssh-session.js';

const available = labAvailable(
  ...['ovs-vsctl', 'ovs-ofctl', 'virsh', 'libvirtd', 'unshare', 'ip', 'ethtool', 'ping'],
  ...['nft', 'dnsmasq', 'conntrack', 'perl', 'socat', 'ssh'],
);

describe.skipIf(!available)('live migration between two libvirtds with ticrypt-net (lab)', () => {
  const p = runPrefix();
  let built: MigrationLab | undefined;
  let server: CounterStream | undefined;
  let ssh: CounterStream | undefined;
  /** Lost pings per migration: the plain guest; the secure guest's managed NIC and, in the same migration, its plain NIC. */
  const losses: { plain: PingCount[]; secure: PingCount[]; second: PingCount[] } = {
    plain: [],
    secure: [],
    second: [],
  };

  const m = () => {
    if (built === undefined) throw new Error('the migration lab was not built');
    return built;
  };
  const two = () => m().two;
  const lab = () => m().lab;
  const registration = () => m().registration();
  const pinned = (h: 'a' | 'b') => m().pinned(h);
  const sshPort = () => m().sshPort();
  const released = (...args: Parameters<MigrationLab['released']>) => m().released(...args);
  const migratePinged = (...args: Parameters<MigrationLab['migratePinged']>) => m().migratePinged(...args);

  beforeAll(async () => {
    built = await MigrationLab.create(p);
  }, 240_000);

  afterAll(async () => {
    await ssh?.stop();
    await server?.stop();
    await built?.remove();
    const list = (counts: PingCount[]) => counts.map((c) => c.lost).join(', ') || 'none';
    console.log(
      `migration: lost pings at 10 ms per migration (A->B, B->A): plain guest ${list(losses.plain)}; ` +
        `secure guest, its ticrypt-net NIC ${list(losses.secure)}, its plain NIC in the same migrations ${list(losses.second)}`,
    );
  });

  it('migrates a guest on a plain OVS bridge A -> B -> A: it runs where it went, answers pings throughout but a few', async () => {
    const guest = m().plain!;
    const { a, b } = two();
    const ports = async (bridge: string) =>
      (await execa('ovs-vsctl', ['list-ports', bridge])).stdout.split('\n').filter(Boolean);
    const there = await migratePinged(guest, a, [[m().pingerNs!, PLAIN.guest]]);
    expect([await a.domains(), await b.domains()]).toEqual([[m().secure!.name], [guest.name]]);
    await released(a, guest.name, there.started);
    expect(await ports(b.bridge(p, 'pln'))).toContain(`${p}bv0`);
    expect(await ports(a.bridge(p, 'pln'))).not.toContain(`${p}av0`);
    const back = await migratePinged(guest, b, [[m().pingerNs!, PLAIN.guest]]);
    expect(new Set(await a.domains())).toEqual(new Set([guest.name, m().secure!.name]));
    losses.plain.push(there.counts[0]!, back.counts[0]!);
    for (const count of losses.plain) {
      expect(count.received).toBeGreaterThan(100);
      // A positive control for the count itself: the migration is not free, but it is not an outage either.
      expect(count.lost).toBeLessThan(count.sent / 2);
    }
  }, 180_000);

  it('migrates a registered secure guest A -> B -> A: registration, flows, SSH session, egress connection and pings follow it', async () => {
    const guest = m().secure!;
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
        [m().pingerNs!, PLAIN.second],
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
    // No more lost than the same migrations' loss on a plain OVS NIC (the guest's second NIC), plus 2 pings
    // a migration, judged over the round trip: two pingers' phases make each migration's difference
    // alone noisy by +-3 (bench/migration measured it), their sum much less.
    let lost = 0;
    let plainLost = 0;
    for (const [i, count] of losses.secure.entries()) {
      expect(count.received, `migration ${i}`).toBeGreaterThan(100);
      expect(losses.second[i]!.received, `migration ${i}`).toBeGreaterThan(100);
      lost += count.lost;
      plainLost += losses.second[i]!.lost;
    }
    expect(lost, `lost over ${losses.secure.length} migrations; plain NIC ${plainLost}`).toBeLessThanOrEqual(
      plainLost + 2 * losses.secure.length,
    );
  }, 240_000);

  it('a cancelled migration leaves everything on A: nothing registered for B, no flows on B', async () => {
    const guest = m().secure!;
    const { a, b } = two();
    await lab().place(SECURE.vm, ['kvm-a', 'kvm-b']);
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
    console.log(`host b's hook said:\n${(await readFile(b.hookStderr, 'utf8').catch(() => '')).slice(-3000)}`);
    // While B prepares, A still holds the NIC (B is only its incoming host).
    expect(midway?.hostId, JSON.stringify(midway)).toBe('kvm-a');
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
    for (const stream of [ssh, server].filter((x) => x !== undefined)) {
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
