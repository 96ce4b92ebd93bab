/**
 * The lab guest itself (issue 8): what later tests rely on it to do, each
 * seen from outside the guest by a receiver in a namespace of this test.
 *
 *     guest a (1081, dhcp, ssh) ─┐                     ┌─ <p>n1 192.168.128.1 (1081): dnsmasq (DHCP, DNS), TCP servers
 *     guest b (1081, dhcp, v6) ──┼── OVS <p>br ────────┤
 *     guest c (1085, static) ────┘                     └─ <p>n2 (1085): a DHCP client, a TCP client
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomMac } from '../../hook/support.js';
import { runPrefix } from '../names.js';
import { Netns } from '../netns.js';
import { OvsBridge } from '../ovs.js';
import { PeerServers } from '../peer-servers.js';
import { labAvailable } from '../prereq.js';
import { dhcpLease } from '../probes.js';
import { vethPair } from '../veth.js';
import { announce, forge, rogueDhcp } from './forger.js';
import { guestCmdline, guestNicXml, type Guest, Guests } from './guest.js';

const lab = labAvailable('virsh', 'ovs-vsctl', 'qemu-system-x86_64', 'dnsmasq', 'busybox', 'ip', 'ethtool', 'ssh');

const GW = '192.168.128.1';

describe('guest command line and NIC XML', () => {
  it('puts what the guest must do on the kernel command line, and refuses what does not fit', () => {
    const line = guestCmdline({ name: 'g1', nic: { mac: '52:54:00:00:00:01', bridge: 'br' }, net: 'none' });
    expect(line).toContain('tn.net=none');
    expect(line).toContain('tn.ipv6=0');
    const big = 'echo x\n'.repeat(400);
    expect(() => guestCmdline({ name: 'g1', nic: { mac: '52:54:00:00:00:01', bridge: 'br' }, script: big })).toThrow(
      /at most 2048/,
    );
  });

  it('turns host checksum offload off on every NIC form', () => {
    const mac = '52:54:00:00:00:01';
    for (const nic of [
      { mac, network: 'secure', portgroup: 'batch' },
      { mac, bridge: 'br-secure', vlan: 1081 },
      { mac, xml: `<interface type="network">\n  <mac address="${mac}"/>\n</interface>\n` },
    ]) {
      expect(guestNicXml(nic)).toMatch(/<driver><host csum='off'\/><\/driver>\n<\/interface>\n$/);
    }
    expect(() => guestNicXml({ mac: '52:54:00:00:00:02', xml: '<interface/>' })).toThrow(/does not carry MAC/);
  });
});

describe.skipIf(!lab)('the lab guest: a real Linux booted by libvirtd (lab)', () => {
  const p = runPrefix();
  let work = '';
  let bridge: OvsBridge | undefined;
  let n1: Netns;
  let n2: Netns;
  let servers: PeerServers | undefined;
  let stopDnsmasq: (() => Promise<unknown>) | undefined;
  let guests: Guests | undefined;
  let a: Guest;
  let b: Guest;
  let c: Guest;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-guest-`));
    await chmod(work, 0o755);
    guests = new Guests(work);
    bridge = await OvsBridge.create(`${p}br`);
    n1 = await Netns.create(`${p}-n1`);
    n2 = await Netns.create(`${p}-n2`);
    await vethPair({ name: `${p}v1` }, { name: 'eth0', netns: n1 }, { txOff: true });
    await bridge.addAccessPort(`${p}v1`, 1081);
    await vethPair({ name: `${p}v2` }, { name: 'eth0', netns: n2 }, { txOff: true });
    await bridge.addAccessPort(`${p}v2`, 1085);
    await n1.run('ip', ['addr', 'add', `${GW}/17`, 'dev', 'eth0']);
    // Learn every ARP the guests send, also for addresses not asked about (the forged-ARP check).
    await n1.run('sysctl', ['-qw', 'net.ipv4.conf.eth0.arp_accept=1']);
    await n2.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    await n2.run('ip', ['addr', 'add', '192.168.123.99/24', 'dev', 'eth0']);
    const conf = join(work, 'dnsmasq.conf');
    await writeFile(
      conf,
      [
        ...['interface=eth0', 'bind-interfaces', 'except-interface=lo', 'no-resolv', 'no-hosts', 'no-ping'],
        ...['dhcp-range=192.168.129.1,192.168.129.254,255.255.128.0,1h', `dhcp-option=option:router,${GW}`],
        ...[`address=/files.lab.example/${GW}`, `dhcp-leasefile=${join(work, 'leases')}`, ''],
      ].join('\n'),
    );
    const dnsmasq = execa('ip', ['netns', 'exec', n1.name, 'dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`], {
      reject: false,
      stdin: 'ignore',
    });
    stopDnsmasq = async () => {
      dnsmasq.kill('SIGTERM');
      await dnsmasq;
    };
    servers = await PeerServers.start(n1, [`${GW}:443`]);
    [a, b, c] = await Promise.all([
      guests.boot({ name: `${p}a`, nic: { mac: randomMac(), bridge: `${p}br`, vlan: 1081 }, ssh: true }),
      guests.boot({ name: `${p}b`, nic: { mac: randomMac(), bridge: `${p}br`, vlan: 1081 }, ipv6: true }),
      guests.boot({
        name: `${p}c`,
        nic: { mac: randomMac(), bridge: `${p}br`, vlan: 1085 },
        net: { address: '192.168.123.2/24' },
      }),
    ]);
  }, 180_000);

  afterAll(async () => {
    await guests?.destroyAll();
    await servers?.stop();
    await stopDnsmasq?.();
    await bridge?.remove();
    await n1?.remove();
    await n2?.remove();
    if (process.env.KEEP_LAB_LOG === undefined && work) await rm(work, { recursive: true, force: true });
    else if (work) console.log(`lab files kept in ${work}`);
  });

  it('leases by DHCP (udhcpc), takes its resolver from the lease, and resolves and fetches by name', async () => {
    expect(a.ip).toMatch(/^192\.168\.129\.\d+$/);
    expect(await a.sh('cat /etc/resolv.conf')).toContain(`nameserver ${GW}`);
    expect(await a.sh('nslookup -type=a files.lab.example')).toContain(GW);
    // nc, by name, through the guest's own resolver: the server answers with the address it saw.
    expect((await a.sh('echo | timeout 5 nc files.lab.example 443')).split('\n')[0]).toBe(a.ip);
    // The channel reports exit codes, stderr, and its own timeout.
    expect(await a.run('echo out; echo err >&2; exit 3')).toMatchObject({
      stdout: 'out\n',
      stderr: 'err\n',
      exitCode: 3,
    });
    expect(await a.run('sleep 5', 1)).toMatchObject({ timedOut: true });
    // A second DHCP exchange, run on demand, gets the same address.
    expect(await a.sh('udhcpc -i eth0 -n -q -t 5 -T 1 2>&1')).toContain(`lease of ${a.ip} obtained`);
  });

  it('serves TCP: its SSH server (dropbear on 22) and nc -l, reached from a namespace', async () => {
    const ssh = await a.ssh(n1, 'hostname; id -u');
    expect([ssh.exitCode, ssh.stdout.trim()]).toEqual([0, `${p}a\n0`]);
    await a.spawn('nc -l -p 7000 -e echo served-by-guest', 'nc');
    const got = await execa('ip', ['netns', 'exec', n1.name, 'busybox', 'nc', '-w', '3', a.ip!, '7000'], {
      reject: false,
      timeout: 10_000,
    });
    expect(got.stdout.trim()).toBe('served-by-guest');
  });

  it('has IPv6 off unless asked, and on when asked (a link-local address the namespace reaches)', async () => {
    expect(await a.sh('ip -6 addr show dev eth0')).toBe('');
    // The link-local address comes a moment after the link: wait for it in the guest.
    const shown = await b.sh(
      'for i in $(seq 50); do ip -6 addr show dev eth0 | grep -q fe80 && break; sleep 0.1; done; ip -6 addr show dev eth0',
    );
    const v6 = /inet6 (fe80::\S+)\/64/.exec(shown)?.[1];
    expect(v6, shown).toBeDefined();
    const ping = await n1.run('ping', ['-6', '-c', '1', '-W', '3', `${v6}%eth0`]).catch((e: Error) => e);
    expect(ping).not.toBeInstanceOf(Error);
  });

  it('changes its MAC and IP, and sends forged ARP (arping -U and -A) that a neighbour learns', async () => {
    const forgedMac = randomMac();
    await forge(b, { mac: forgedMac, ip: `${b.ip}/17` });
    expect(await b.sh('ip addr show dev eth0')).toContain(`link/ether ${forgedMac}`);
    // An address it does not hold, claimed both ways.
    const claimed = '192.168.130.77';
    await announce(b, claimed, 'gratuitous');
    await announce(b, claimed, 'reply');
    expect((await n1.run('ip', ['neigh', 'show', claimed, 'dev', 'eth0'])).stdout).toContain(`lladdr ${forgedMac}`);
  });

  it('runs a rogue DHCP server (busybox udhcpd) that answers a neighbour', async () => {
    await rogueDhcp(c, { start: '192.168.123.100', end: '192.168.123.110', router: '192.168.123.2' });
    expect(await dhcpLease(n2, 'eth0', 10)).toMatch(/^192\.168\.123\.1(0\d|10)$/);
  });
});
