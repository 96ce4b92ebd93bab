/**
 * The real dnsmasq, in network namespaces this test creates: a "backend" with
 * a veth to a "vm" namespace per network and one to an "internet" namespace
 * whose own dnsmasq plays the upstream resolver. A real DHCP client (busybox
 * udhcpc, Debian package `busybox`) and `dig` play the VM.
 *
 *     vm  <p>v0 ─── <p>b0  backend (lab: controlled DNS, DHCP only, 192.168.200.0/24)
 *     vm  <p>v1 ─── <p>b1  backend (labopen: open DNS, 192.168.122.0/24)
 *                   <p>bu  backend 198.51.100.1 ─── <p>iu internet 198.51.100.53 (upstream resolver)
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDnsmasqConfig, type DnsmasqConfigOptions } from '../../../src/backend/dnsmasq/config.js';
import { HostsDir } from '../../../src/backend/dnsmasq/hosts-dir.js';
import { DnsmasqProcess, readPidFile } from '../../../src/backend/dnsmasq/process.js';
import { findNetwork } from '../../../src/site/lookup.js';
import { parseSite } from '../../../src/site/parse.js';
import { runPrefix } from '../../lab/names.js';
import { Netns } from '../../lab/netns.js';
import { labAvailable } from '../../lab/prereq.js';

const lab = labAvailable('dnsmasq', 'nft', 'ip', 'busybox', 'dig', 'ethtool');

const VM_MAC = '52:54:00:c0:00:01';
const RESERVED_MAC = '52:54:00:c0:00:02';
const UNKNOWN_MAC = '52:54:00:c0:00:03';
const OPEN_MAC = '52:54:00:c0:00:04';

describe.skipIf(!lab)('dnsmasq gateway in network namespaces (lab)', () => {
  const p = runPrefix();
  const namespaces: Netns[] = [];
  const processes: DnsmasqProcess[] = [];
  let backend: Netns;
  let vm: Netns;
  let internet: Netns;
  let work: string;
  let labDnsmasq: DnsmasqProcess;
  let labHosts: HostsDir;
  let labOptions: DnsmasqConfigOptions;

  const site = parseSite({
    backend: { upstreamDns: ['198.51.100.53'] },
    networks: {
      lab: {
        kind: 'secure',
        bridge: 'br-lab',
        vlan: 1081,
        subnet: '192.168.200.0/24',
        gateway: '192.168.200.1',
        gatewayInterface: `${p}b0`,
        dhcp: { start: '192.168.200.10', end: '192.168.200.250', leaseTime: '10m' },
        reservations: [{ mac: RESERVED_MAC, ip: '192.168.200.5', name: 'fixed' }],
      },
      labopen: {
        kind: 'service',
        bridge: 'br-labopen',
        vlan: 1082,
        subnet: '192.168.122.0/24',
        gateway: '192.168.122.1',
        gatewayInterface: `${p}b1`,
        dhcp: { start: '192.168.122.3', end: '192.168.122.254' },
      },
    },
  });
  const labNet = findNetwork(site, 'lab');
  const openNet = findNetwork(site, 'labopen');

  /** Run in a namespace, never rejecting: DHCP and DNS failures are results here. */
  function inNs(ns: Netns, program: string, args: string[]) {
    return execa('ip', ['netns', 'exec', ns.name, program, ...args], { reject: false, all: true, timeout: 20_000 });
  }

  async function setMac(iface: string, mac: string): Promise<void> {
    await vm.run('ip', ['link', 'set', iface, 'down']);
    await vm.run('ip', ['link', 'set', iface, 'address', mac]);
    await vm.run('ip', ['link', 'set', iface, 'up']);
  }

  /** One DHCP exchange from the vm namespace; the leased address, or undefined. */
  async function dhcp(iface: string): Promise<string | undefined> {
    const result = await inNs(vm, 'busybox', [
      ...['udhcpc', '-f', '-q', '-n', '-i', iface, '-s', '/bin/true', '-t', '3', '-T', '1', '-A', '1'],
    ]);
    return /lease of ([0-9.]+) obtained/.exec(result.all ?? '')?.[1];
  }

  let lastTtls: number[] = [];
  async function dig(server: string, name: string): Promise<{ status: string; answers: string[] }> {
    const result = await inNs(vm, 'dig', [`@${server}`, name, 'A', '+time=2', '+tries=2']);
    const status = /status: ([A-Z]+)/.exec(result.stdout)?.[1] ?? `no answer (exit ${result.exitCode})`;
    const records = [...result.stdout.matchAll(/^\S+\s+(\d+)\s+IN\s+A\s+([0-9.]+)$/gm)];
    lastTtls = records.map((m) => Number(m[1]));
    return { status, answers: records.map((m) => m[2] ?? '') };
  }

  function paths(name: string) {
    return {
      hostsDir: join(work, name, 'hosts'),
      leaseFile: join(work, name, 'leases'),
      pidFile: join(work, name, 'dnsmasq.pid'),
    };
  }

  async function startDnsmasq(name: string, text: string): Promise<DnsmasqProcess> {
    const confFile = join(work, name, 'dnsmasq.conf');
    await writeFile(confFile, text);
    const ns = name === 'upstream' ? internet : backend;
    const started = await DnsmasqProcess.start({
      confFile,
      pidFile: join(work, name, 'dnsmasq.pid'),
      netns: ns.name,
    });
    processes.push(started);
    return started;
  }

  beforeAll(async () => {
    backend = await Netns.create(`${p}-backend`);
    namespaces.push(backend);
    vm = await Netns.create(`${p}-vm`);
    namespaces.push(vm);
    internet = await Netns.create(`${p}-internet`);
    namespaces.push(internet);

    for (const [here, there, far] of [
      [`${p}b0`, `${p}v0`, vm],
      [`${p}b1`, `${p}v1`, vm],
      [`${p}bu`, `${p}iu`, internet],
    ] as const) {
      await backend.run('ip', ['link', 'add', here, 'type', 'veth', 'peer', 'name', there, 'netns', far.name]);
      await backend.run('ethtool', ['-K', here, 'tx', 'off']);
      await backend.run('ip', ['link', 'set', here, 'up']);
      await far.run('ip', ['link', 'set', there, 'up']);
    }
    await backend.run('ip', ['addr', 'add', '192.168.200.1/24', 'dev', `${p}b0`]);
    await backend.run('ip', ['addr', 'add', '192.168.122.1/24', 'dev', `${p}b1`]);
    await backend.run('ip', ['addr', 'add', '198.51.100.1/24', 'dev', `${p}bu`]);
    await internet.run('ip', ['addr', 'add', '198.51.100.53/24', 'dev', `${p}iu`]);
    await setMac(`${p}v0`, UNKNOWN_MAC);
    await setMac(`${p}v1`, OPEN_MAC);

    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-`));
    await chmod(work, 0o755); // dnsmasq reads the hosts dir after dropping to nobody
    await execa('mkdir', ['-p', ...['upstream', 'lab', 'labopen'].map((n) => join(work, n))]);

    await startDnsmasq(
      'upstream',
      [
        `interface=${p}iu`,
        'bind-interfaces',
        'listen-address=198.51.100.53',
        'except-interface=lo',
        'no-resolv',
        'no-hosts',
        'address=/allowed.example/203.0.113.10',
        'address=/other.example/203.0.113.20',
        'local-ttl=3600',
        `pid-file=${join(work, 'upstream', 'dnsmasq.pid')}`,
        'log-facility=-',
        '',
      ].join('\n'),
    );

    labOptions = paths('lab');
    labHosts = new HostsDir(labOptions.hostsDir, { network: labNet, reload: () => labDnsmasq.reload() });
    await labHosts.ensure();
    labDnsmasq = await startDnsmasq('lab', renderDnsmasqConfig(site, labNet, labOptions));

    const openHosts = new HostsDir(paths('labopen').hostsDir, { network: openNet, reload: () => undefined });
    await openHosts.ensure();
    await openHosts.put({ mac: OPEN_MAC, ip: '192.168.122.50' });
    await startDnsmasq('labopen', renderDnsmasqConfig(site, openNet, paths('labopen')));
  });

  afterAll(async () => {
    for (const process of processes) await process.stop();
    for (const ns of namespaces) await ns.remove();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('runs dnsmasq in the foreground with the pid of its pid file', async () => {
    expect(await readPidFile(labOptions.pidFile)).toBe(labDnsmasq.pid);
    expect(labDnsmasq.running).toBe(true);
  });

  it('gives an unknown MAC no lease', async () => {
    await setMac(`${p}v0`, UNKNOWN_MAC);
    expect(await dhcp(`${p}v0`)).toBeUndefined();
  });

  it('gives a registered MAC its reserved address as soon as its file is written (no reload)', async () => {
    expect(await labHosts.put({ mac: VM_MAC, ip: '192.168.200.77' })).toBe('created');
    await setMac(`${p}v0`, VM_MAC);
    expect(await dhcp(`${p}v0`)).toBe('192.168.200.77');
  });

  it('gives a changed reservation after the reload it triggers', async () => {
    expect(await labHosts.put({ mac: VM_MAC, ip: '192.168.200.78' })).toBe('replaced');
    expect(await dhcp(`${p}v0`)).toBe('192.168.200.78');
  });

  it('keeps serving a removed entry until SIGHUP (why a removal reloads)', async () => {
    const withoutReload = new HostsDir(labOptions.hostsDir, { network: labNet, reload: () => undefined });
    expect(await withoutReload.remove(VM_MAC)).toBe(true);
    expect(await dhcp(`${p}v0`)).toBe('192.168.200.78');
    labDnsmasq.reload();
    expect(await dhcp(`${p}v0`)).toBeUndefined();
  });

  it('gives a MAC no new lease once HostsDir removed its entry (file gone, SIGHUP sent)', async () => {
    expect(await labHosts.put({ mac: VM_MAC, ip: '192.168.200.79' })).toBe('created');
    expect(await dhcp(`${p}v0`)).toBe('192.168.200.79');
    expect(await labHosts.remove(VM_MAC)).toBe(true);
    expect(await dhcp(`${p}v0`)).toBeUndefined();
  });

  it('serves the site reservations from the config file', async () => {
    await setMac(`${p}v0`, RESERVED_MAC);
    expect(await dhcp(`${p}v0`)).toBe('192.168.200.5');
  });

  it('serves the open network from a second dnsmasq in the same namespace', async () => {
    expect(await dhcp(`${p}v1`)).toBe('192.168.122.50');
  });

  describe('DNS', () => {
    beforeAll(async () => {
      await vm.run('ip', ['addr', 'add', '192.168.200.77/24', 'dev', `${p}v0`]);
      await vm.run('ip', ['addr', 'add', '192.168.122.50/24', 'dev', `${p}v1`]);
    });

    it('serves no DNS on a controlled network (the backend service DNS front answers there)', async () => {
      expect((await dig('192.168.200.1', 'allowed.example')).status).toMatch(/^no answer/);
    });

    it('forwards everything on an open network, TTLs as they come', async () => {
      expect(await dig('192.168.122.1', 'other.example')).toEqual({ status: 'NOERROR', answers: ['203.0.113.20'] });
      await dig('192.168.122.1', 'ttl.other.example');
      expect(lastTtls).toEqual([3600]);
    });

    it('does not answer on the uplink', async () => {
      const result = await inNs(internet, 'dig', ['@198.51.100.1', 'allowed.example', 'A', '+time=1', '+tries=1']);
      expect(result.exitCode).not.toBe(0);
    });

    it('keeps serving DHCP after a restart', async () => {
      const before = labDnsmasq.pid;
      labDnsmasq = await labDnsmasq.restart();
      processes.push(labDnsmasq);
      expect(labDnsmasq.pid).not.toBe(before);
      await setMac(`${p}v0`, RESERVED_MAC);
      expect(await dhcp(`${p}v0`)).toBe('192.168.200.5');
    });
  });
});
