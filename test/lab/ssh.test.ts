/**
 * Issue 12's acceptance, against the real programs: `ticrypt-net backend
 * serve` (built CLI) in a "backend" namespace gives each registered NIC on the
 * secure network a backend port forwarded (table inet ticrypt's DNAT) to its
 * port 22; two real guests (test/lab/guest: dropbear on 22) sit on the OVS
 * bridge; a client in the "internet" namespace behind the backend's uplink
 * runs Debian's `ssh` through backend:port into them. The site lets in
 * clients from 203.0.113.0/24 only: the same namespace, from its
 * 198.51.100.77, is the outsider; its 203.0.113.60 is the client an admin
 * narrows a VM to. The victims count arrivals: dropbear logs
 * each connection, `nc -l` in a guest logs what reaches its port 80.
 *
 *     guests g1, g2 (1081) ── OVS bridge <p>br ── g1 (1081) ─ backend ── up 203.0.113.1 ═══ eth0 internet
 *                                                                │                           203.0.113.50 (client)
 *                                             root 198.18.0.2 ─ m1 198.18.0.1 (API)          203.0.113.60 (insider)
 *                                                                                            198.51.100.77 (outsider)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_URL, BackendLab, UPLINK_IPS } from './backend-lab.js';
import { type Guest, Guests } from './guest/guest.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';
import { tcpProbe } from './probes.js';
import { CLI } from './service.js';
import { SshSession, sshRun } from './ssh-session.js';

const available = labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'conntrack', 'ip', 'ethtool', 'perl', 'socat', 'ssh');
const BACKEND = UPLINK_IPS[0];
const CLIENT = '203.0.113.50';
const OUTSIDER = '198.51.100.77';
/** A second client inside the site's sources: the one an admin narrows a VM to. */
const INSIDER = '203.0.113.60';
const PORTS = { from: 22100, to: 22109 };

const uuid = (n: number) => `0b1d2c3e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const GUESTS = {
  g1: { mac: '52:54:00:b0:00:01', vm: uuid(0xb1) },
  g2: { mac: '52:54:00:b0:00:02', vm: uuid(0xb2) },
} as const;
type GuestName = keyof typeof GUESTS;

describe.skipIf(!available)('SSH access through the backend firewall: real ssh into real guests (lab)', () => {
  const p = runPrefix();
  let built: BackendLab<never> | undefined;
  let guests: Guests | undefined;
  const guest = {} as Record<GuestName, Guest>;
  const port = {} as Record<GuestName, number>;
  const sessions: SshSession[] = [];
  let tokenDir = '';
  /** Another program on the backend listening on the range's first port: the service must skip it. */
  let squatter: (Promise<unknown> & { kill: (signal?: NodeJS.Signals) => boolean }) | undefined;

  const lab = (): BackendLab<never> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const via = (name: GuestName, bind?: string) => ({
    host: BACKEND,
    port: port[name],
    ...(bind === undefined ? {} : { bind }),
  });
  const open = async (name: GuestName) => {
    const session = await SshSession.open(lab().internet, via(name));
    sessions.push(session);
    return session;
  };
  /** The connections the guest's dropbear logged (its source address and port each). */
  const dropbearClients = async (name: GuestName) =>
    [...(await guest[name].sh('cat /tmp/dropbear.log')).matchAll(/connection from ([0-9.]+):\d+/g)].map((m) => m[1]);

  async function register(name: GuestName): Promise<{ ip: string; ssh?: { port: number } }> {
    const placed = await lab().call('PUT', `/v1/vms/${GUESTS[name].vm}/placement`, 'ops', { hosts: ['kvm-1'] });
    expect(placed.status).toBe(200);
    const { status, json } = await lab().call('POST', '/v1/register', 'kvm-1', {
      vmUuid: GUESTS[name].vm,
      vmName: `vm-${name}`,
      mac: GUESTS[name].mac,
      network: 'secure',
      generation: 1,
    });
    expect(status, JSON.stringify(json)).toBe(200);
    return json;
  }

  /** `ticrypt-net ssh ...` (built CLI) against the lab's API with the admin token. */
  async function cli(...args: string[]) {
    return execa(process.execPath, [CLI, ...args, '--backend', API_URL, '--token-file', join(tokenDir, 'ops')], {
      reject: false,
    });
  }

  beforeAll(async () => {
    built = await BackendLab.create(p, {
      site: {
        networks: {
          secure: { preset: 'secure', ssh: { ports: `${PORTS.from}-${PORTS.to}`, sources: ['203.0.113.0/24'] } },
        },
      },
      vms: {},
      internet: [`${CLIENT}/24`, `${INSIDER}/24`, `${OUTSIDER}/24`],
      tokens: { 'kvm-1': [], ops: ['--admin'] },
    });
    tokenDir = await mkdtemp(join(tmpdir(), `ticrypt-${p}-tokens-`));
    await writeFile(join(tokenDir, 'ops'), `${built.tokens.ops}\n`, { mode: 0o600 });
    squatter = execa(
      'ip',
      ['netns', 'exec', built.backend.name, 'socat', `TCP-LISTEN:${PORTS.from},fork`, '/dev/null'],
      {
        reject: false,
        stdin: 'ignore',
      },
    );
    await built.startService();
  });

  afterAll(async () => {
    for (const session of sessions) await session.close();
    await guests?.destroyAll();
    squatter?.kill('SIGKILL');
    await squatter;
    await built?.remove();
    if (tokenDir) await rm(tokenDir, { recursive: true, force: true });
  });

  it('answers each registration a port of the range (not one another program listens on), and lists them (API and `ssh ls`)', async () => {
    const ips = {} as Record<GuestName, string>;
    for (const name of Object.keys(GUESTS) as GuestName[]) {
      const answer = await register(name);
      expect(answer.ssh?.port).toBeGreaterThanOrEqual(PORTS.from);
      expect(answer.ssh?.port).toBeLessThanOrEqual(PORTS.to);
      port[name] = answer.ssh!.port;
      ips[name] = answer.ip;
    }
    expect(port.g1).not.toBe(port.g2);
    expect([port.g1, port.g2]).not.toContain(PORTS.from); // socat listens there
    const ls = await cli('ssh', 'ls');
    expect(ls.exitCode, ls.stderr).toBe(0);
    expect(ls.stdout).toContain(`${GUESTS.g1.vm}\tvm-g1\tsecure\t*:${port.g1} -> ${ips.g1}:22\t203.0.113.0/24\n`);
    expect(ls.stdout).toContain(`*:${port.g2} -> ${ips.g2}:22`);

    guests = new Guests(lab().work);
    const booted = await Promise.all(
      (Object.keys(GUESTS) as GuestName[]).map((name) =>
        guests!.boot({ name: `${p}${name}`, nic: { mac: GUESTS[name].mac, bridge: `${p}br`, vlan: 1081 }, ssh: true }),
      ),
    );
    [guest.g1, guest.g2] = booted as [Guest, Guest];
    expect(booted.map((g) => g.ip)).toEqual([ips.g1, ips.g2]);
  });

  it("logs a client in through backend:port into that VM's port 22, and runs a command there", async () => {
    const one = await sshRun(lab().internet, via('g1'), 'hostname; id -u');
    expect([one.exitCode, one.stdout], one.stderr).toEqual([0, `${p}g1\n0`]);
    const two = await sshRun(lab().internet, via('g2'), 'hostname');
    expect([two.exitCode, two.stdout], two.stderr).toEqual([0, `${p}g2`]);
    // The VM sees the client's own address (DNAT only, no masquerade).
    expect(await dropbearClients('g1')).toEqual([CLIENT]);
    // The backend's own programs reach the forwarded port too (the output NAT chain).
    const local = await sshRun(lab().backend, via('g1'), 'hostname');
    expect([local.exitCode, local.stdout], local.stderr).toEqual([0, `${p}g1`]);
  });

  it("reaches nothing else: not the VM's other ports, not another VM, not an unassigned port; an outsider is refused", async () => {
    // Port 80 in each VM counts its arrivals in /tmp/hits80; one from the VM itself shows the count works.
    const listen = [
      "printf '#!/bin/sh\\necho hit >>/tmp/hits80\\necho arrived\\n' >/tmp/hit.sh; chmod +x /tmp/hit.sh",
      'nc -ll -p 80 -e /tmp/hit.sh',
    ].join('\n');
    const hits = async (name: GuestName) =>
      (await guest[name].sh('cat /tmp/hits80 2>/dev/null; true')).split('\n').filter(Boolean).length;
    for (const name of ['g1', 'g2'] as const) {
      await guest[name].spawn(listen, 'nc80');
      expect(await guest[name].sh('sleep 0.3; nc -w 2 127.0.0.1 80')).toBe('arrived\n');
      expect(await hits(name)).toBe(1);
    }
    const before = { g1: await dropbearClients('g1'), g2: await dropbearClients('g2') };
    const dropped = await lab().counter('dropped_ssh_source');
    const internet = lab().internet;
    // An attacker on the uplink routes the VM network to the backend and aims at the VMs directly.
    await internet.run('ip', ['route', 'add', '192.168.128.0/17', 'via', BACKEND]);
    const unassigned = PORTS.to; // (the first port is the squatter's)
    expect([port.g1, port.g2]).not.toContain(unassigned);
    const probes = await Promise.all([
      tcpProbe(internet, guest.g1.ip!, 22),
      tcpProbe(internet, guest.g1.ip!, 80),
      tcpProbe(internet, guest.g2.ip!, 22),
      tcpProbe(internet, BACKEND, 80),
      tcpProbe(internet, BACKEND, unassigned),
    ]);
    expect(probes.map((r) => r.outcome)).toEqual(['timeout', 'timeout', 'timeout', 'refused', 'refused']);
    // The forwarded port leads to port 22 of its own VM only, whoever asks.
    const banner = await tcpProbe(internet, BACKEND, port.g1);
    expect(banner.firstLine).toMatch(/^SSH-2\.0-dropbear/);
    // The outsider (198.51.100.77, outside the site's 203.0.113.0/24) gets nothing, and is counted.
    const outsider = await sshRun(internet, via('g1', OUTSIDER), 'hostname');
    expect(outsider.exitCode).toBe(255);
    expect(outsider.stderr).toMatch(/timed out/);
    expect(await lab().counter('dropped_ssh_source')).toBeGreaterThan(dropped);
    // The victims' own count: port 80 saw nothing; dropbear saw the one banner probe on g1 and nothing on g2.
    expect([await hits('g1'), await hits('g2')]).toEqual([1, 1]);
    expect(await dropbearClients('g1')).toEqual([...before.g1, CLIENT]);
    expect(await dropbearClients('g2')).toEqual(before.g2);
  });

  it('narrows a VM to other client networks (`ssh sources set`): the client is refused, then let in again', async () => {
    const narrowed = await cli('ssh', 'sources', 'set', GUESTS.g1.vm, '203.0.113.60');
    expect(narrowed.exitCode, narrowed.stderr).toBe(0);
    expect(narrowed.stdout).toContain(`${GUESTS.g1.vm}: SSH from 203.0.113.60/32\n`);
    expect((await sshRun(lab().internet, via('g1'), 'hostname', 10)).exitCode).toBe(255);
    // g2 keeps the site's sources.
    expect((await sshRun(lab().internet, via('g2'), 'hostname')).stdout).toBe(`${p}g2`);
    expect((await cli('ssh', 'sources', 'reset', GUESTS.g1.vm)).exitCode).toBe(0);
    expect((await sshRun(lab().internet, via('g1'), 'hostname')).stdout).toBe(`${p}g1`);
  });

  it('narrowing a VM cuts its open session from a client now outside its sources; one inside keeps its session and logs in', async () => {
    const flowsFrom = async (source: string) =>
      (await lab().backend.run('conntrack', ['-L', '-p', 'tcp', '--orig-port-dst', String(port.g1), '-s', source]))
        .stdout;
    const cut = await SshSession.open(lab().internet, via('g1', CLIENT));
    const kept = await SshSession.open(lab().internet, via('g1', INSIDER));
    sessions.push(cut, kept);
    const other = await open('g2');
    // Positive control: both sessions to g1 live and are tracked, each from its own client.
    expect([await cut.echo('before-cut'), await kept.echo('before-kept')]).toEqual([true, true]);
    expect(await flowsFrom(CLIENT)).toContain(`src=${CLIENT} `);
    expect(await flowsFrom(INSIDER)).toContain(`src=${INSIDER} `);
    const dropped = await lab().counter('dropped_ssh_source');

    const narrowed = await cli('ssh', 'sources', 'set', GUESTS.g1.vm, `${INSIDER}/32`);
    expect(narrowed.exitCode, narrowed.stderr).toBe(0);
    // The session from CLIENT is cut: its conntrack entry is gone, and its next packets arrive as a new flow
    // from a source the VM no longer allows, dropped (and counted) before they reach the guest.
    expect(await cut.echo('after-cut', 5000)).toBe(false);
    expect(await flowsFrom(CLIENT)).toBe('');
    expect(await lab().counter('dropped_ssh_source')).toBeGreaterThan(dropped);
    expect(await cut.echo('still-cut', 3000)).toBe(false);
    // The client inside the narrowed sources keeps its session and logs in anew; CLIENT cannot.
    expect(await kept.echo('after-kept')).toBe(true);
    expect(kept.exitCode).toBeUndefined();
    const login = await sshRun(lab().internet, via('g1', INSIDER), 'hostname');
    expect([login.exitCode, login.stdout], login.stderr).toEqual([0, `${p}g1`]);
    expect((await sshRun(lab().internet, via('g1', CLIENT), 'hostname', 10)).exitCode).toBe(255);
    // Another VM's session is not touched.
    expect(await other.echo('other-still-here')).toBe(true);

    expect((await cli('ssh', 'sources', 'reset', GUESTS.g1.vm)).exitCode).toBe(0);
    for (const session of [cut, kept, other]) await session.close();
    expect((await sshRun(lab().internet, via('g1'), 'hostname')).stdout).toBe(`${p}g1`);
  });

  it('keeps an open session through a restart of the service, and the same port', async () => {
    const session = await open('g1');
    const table = await lab().table();
    await lab().services.at(-1)!.stop();
    expect(await session.echo('while-stopped')).toBe(true);
    await lab().startService();
    expect(await session.echo('after-restart')).toBe(true);
    expect(session.exitCode).toBeUndefined();
    expect(await lab().table()).toBe(table);
    const { json } = await lab().call('GET', '/v1/ssh', 'ops');
    expect(json.forwards.map((f: { port: number }) => f.port).sort()).toEqual([port.g1, port.g2].sort());
    await session.close();
  });

  it('closes the port at deregistration and cuts the open session; the other VM is untouched', async () => {
    const session = await open('g1');
    const other = await open('g2');
    const { status, json } = await lab().call('POST', '/v1/deregister', 'kvm-1', {
      mac: GUESTS.g1.mac,
      network: 'secure',
      generation: 2,
    });
    expect([status, json]).toEqual([200, { status: 'removed' }]);
    expect(await session.echo('after-deregistration')).toBe(false);
    expect(await session.exited(15_000)).toBe(255);
    expect((await tcpProbe(lab().internet, BACKEND, port.g1)).outcome).toBe('refused');
    const again = await sshRun(lab().internet, via('g1'), 'hostname');
    expect(again.exitCode).toBe(255);
    expect(again.stderr).toMatch(/refused/);
    expect(await other.echo('still-here')).toBe(true);
    expect((await lab().backend.run('conntrack', ['-L', '-p', 'tcp', '--orig-port-dst', String(port.g1)])).stdout).toBe(
      '',
    );
  });
});
