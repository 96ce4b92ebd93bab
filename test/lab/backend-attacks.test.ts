/**
 * Issue 9's acceptance: every attack the issue found, replayed against the
 * real `ticrypt-net backend serve` (real nft, dnsmasq, OVS, namespaces as
 * VMs), each asserting that nothing arrives at the victim (the receiver's own
 * log, or the backend's store and table) next to a legitimate flow in the
 * same test that still works.
 *
 *     a, b, c, ev (secure 1081) ─┐                          ┌─ g1 ─┐
 *     d (research 1084, a's MAC) ┼── OVS bridge ─────────────┼─ g2 ─┼ backend ── up ═══ internet: receiver
 *     sv (service 1082) ─────────┘                          └─ g3 ─┘   │         203.0.113.10 tcp 443, udp 5353/5354
 *                                                  root 198.18.0.2 ── 198.18.0.1 (API)   203.0.113.20 tcp 443
 *
 * Hosts: kvm-1 runs every VM (the launcher placed them there); kvm-2, kvm-3
 * and kvm-4 are other hosts with valid tokens, acting as attackers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_URL, BackendLab, UPLINK_IPS } from './backend-lab.js';
import { runPrefix } from './names.js';
import type { Netns } from './netns.js';
import { labAvailable } from './prereq.js';
import { arpReplies, configure, dhcpLease, tcpProbe, TcpStream } from './probes.js';
import { Receiver, sendUdp } from './receiver.js';
import { CLI } from './service.js';

const available = labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'busybox', 'socat', 'conntrack', 'ip', 'ethtool', 'perl');

const S1 = '203.0.113.10';
const S2 = '203.0.113.20';
const UPLINK = UPLINK_IPS[0];
const uuid = (n: number) => `0b1d2c3e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const A_MAC = '52:54:00:b0:00:01';
/** The VM namespaces: network, MAC, VM UUID (undefined: never registered). */
const VMS = {
  a: { network: 'secure', mac: A_MAC, vm: uuid(0xa1) },
  b: { network: 'secure', mac: '52:54:00:b0:00:02', vm: uuid(0xa2) },
  c: { network: 'secure', mac: '52:54:00:b0:00:03', vm: undefined },
  ev: { network: 'secure', mac: '52:54:00:b0:00:66', vm: undefined },
  d: { network: 'research', mac: A_MAC, vm: uuid(0xa4) },
  sv: { network: 'service', mac: '52:54:00:b0:00:05', vm: uuid(0xa5) },
} as const;
type VmName = keyof typeof VMS;

/** A's allow-list: tcp S1:443 and udp S1:5353; never udp 5354 or S2. */
const A_ALLOW = [
  { address: S1, protocol: 'tcp', ports: 443 },
  { address: S1, protocol: 'udp', ports: 5353 },
];
/** B's and D's: tcp S2:443 only. */
const S2_ALLOW = [{ address: S2, protocol: 'tcp', ports: 443 }];

describe.skipIf(!available)('the backend holds against a hostile VM or host (lab)', () => {
  const p = runPrefix();
  let built: BackendLab<VmName> | undefined;
  let receiver: Receiver | undefined;
  const streams: TcpStream[] = [];
  let vm: Record<VmName, Netns>;
  let backend: Netns;
  const ips = {} as Record<VmName, string>;

  const lab = (): BackendLab<VmName> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const rx = (): Receiver => {
    if (receiver === undefined) throw new Error('no receiver');
    return receiver;
  };
  const call = (method: string, path: string, auth: string, body?: unknown) => lab().call(method, path, auth, body);

  async function place(vmUuid: string, hosts: readonly string[]): Promise<void> {
    const { status, json } = await call('PUT', `/v1/vms/${vmUuid}/placement`, 'ops', { hosts });
    expect(status, JSON.stringify(json)).toBe(200);
  }

  async function register(name: VmName, host = 'kvm-1', vmUuid = VMS[name].vm, generation = Date.now()) {
    const { network, mac } = VMS[name];
    return call('POST', '/v1/register', host, { vmUuid, vmName: `vm-${name}`, mac, network, generation });
  }

  async function allow(vmUuid: string, entries: unknown[]): Promise<void> {
    const { status, json } = await call('PUT', `/v1/vms/${vmUuid}/allow-list`, 'ops', { entries });
    expect(status, JSON.stringify(json)).toBe(200);
  }

  /** Datagrams labelled `label` that reached the receiver. */
  const received = (label: string) => rx().arrivals.filter((a) => a.data?.startsWith(`${label} `));

  /** Whether a registration of `mac` on `network` is held by `host`, from the admin listing. */
  async function holder(network: string, mac: string): Promise<string | undefined> {
    const { json } = await call('GET', '/v1/registrations', 'ops');
    return (json.registrations as { network: string; mac: string; hostId: string }[]).find(
      (r) => r.network === network && r.mac === mac,
    )?.hostId;
  }

  /** The tombstones the store keeps (read-only, beside the running service). */
  function tombstones(): number {
    const db = new Database(lab().paths.store, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM deregistrations').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }

  beforeAll(async () => {
    built = await BackendLab.create(p, {
      site: {
        backend: {
          registrations: { perHost: 40, perVm: 4 },
          api: { requestsPerMinute: 600, unauthenticatedPerMinute: 30 },
        },
        networks: {
          secure: {
            preset: 'secure',
            subnet: '192.168.128.0/18',
            dhcp: { start: '192.168.129.1', end: '192.168.191.254' },
          },
          research: {
            kind: 'research',
            bridge: 'br-research',
            vlan: 1084,
            subnet: '192.168.192.0/18',
            gateway: '192.168.192.1',
            dhcp: { start: '192.168.193.1', end: '192.168.255.254' },
            egress: 'allow-list',
            dns: 'controlled',
          },
          service: { preset: 'service' },
        },
      },
      vms: VMS,
      internet: [`${S1}/24`, `${S2}/24`],
      tokens: { 'kvm-1': [], 'kvm-2': [], 'kvm-3': [], 'kvm-4': [], ops: ['--admin'], prometheus: ['--metrics'] },
    });
    ({ vm, backend } = built);
    receiver = await Receiver.start(built.internet, [
      `tcp:${S1}:443`,
      `udp:${S1}:5353`,
      `udp:${S1}:5354`,
      `tcp:${S2}:443`,
    ]);
    await built.startService();

    // The launcher places every VM on kvm-1; kvm-1 registers them; the admin sets their allow-lists.
    for (const name of ['a', 'b', 'd', 'sv'] as const) {
      await place(VMS[name].vm, ['kvm-1']);
      const { status, json } = await register(name);
      expect(status, JSON.stringify(json)).toBe(200);
      ips[name] = json.ip;
    }
    await allow(VMS.a.vm, A_ALLOW);
    await allow(VMS.b.vm, S2_ALLOW);
    await allow(VMS.d.vm, S2_ALLOW);
    for (const name of ['a', 'b', 'd', 'sv'] as const) {
      const network = lab().network(VMS[name].network);
      expect(await dhcpLease(vm[name], 'eth0')).toBe(ips[name]);
      await configure(vm[name], 'eth0', `${ips[name]}/${network.subnet.split('/')[1]}`, network.gateway);
    }
    await configure(vm.c, 'eth0', '192.168.150.150/18', '192.168.128.1');
    await configure(vm.ev, 'eth0', '192.168.150.151/18', '192.168.128.1');
  });

  afterAll(async () => {
    for (const stream of streams) await stream.close();
    await receiver?.stop();
    await built?.remove();
  });

  it('lets the legitimate flows through: each VM its own allow-list, the service VM anything, masqueraded', async () => {
    const [a443, b443, d443, sv443] = await Promise.all([
      tcpProbe(vm.a, S1, 443),
      tcpProbe(vm.b, S2, 443),
      tcpProbe(vm.d, S2, 443),
      tcpProbe(vm.sv, S1, 443),
    ]);
    expect([a443, b443, d443, sv443]).toEqual(Array(4).fill({ outcome: 'connected', firstLine: UPLINK }));
    await sendUdp(vm.a, `${ips.a}:40010`, `${S1}:5353`, { count: 3, label: 'a-legit' });
    await sleep(300);
    expect(received('a-legit').map((a) => a.from)).toEqual(Array(3).fill(`${UPLINK}:40010`));
  });

  it('pre-opened flows: a service VM spoofing A (or any outside address) sends nothing; A gets no flow it did not own', async () => {
    const spoofed = await lab().counter('dropped_spoofed_service');
    // The service VM takes A's address (and one outside every subnet) as its own, and knows its gateway's MAC,
    // so the spoofed packets do reach the backend (ARP cannot be what stops them).
    const g2 = lab().gatewayInterface('service');
    const gatewayMac = JSON.parse((await backend.run('ip', ['-j', 'link', 'show', g2])).stdout)[0].address as string;
    await vm.sv.run('ip', ['addr', 'add', `${ips.a}/32`, 'dev', 'eth0']);
    await vm.sv.run('ip', ['addr', 'add', '198.18.0.77/32', 'dev', 'eth0']);
    await vm.sv.run('ip', [
      'neigh',
      'replace',
      '192.168.122.1',
      'lladdr',
      gatewayMac,
      'dev',
      'eth0',
      'nud',
      'permanent',
    ]);
    await sendUdp(vm.sv, `${ips.a}:40000`, `${S1}:5354`, { count: 5, label: 'spoof-a' });
    await sendUdp(vm.sv, '198.18.0.77:40001', `${S1}:5354`, { count: 5, label: 'spoof-outside' });
    // A then sends to the same server and port from the same source port: no flow was opened for it.
    await sendUdp(vm.a, `${ips.a}:40000`, `${S1}:5354`, { count: 5, label: 'a-preopened' });
    // The legitimate flows next to it: the service VM from its own address, A to what it may reach.
    await sendUdp(vm.sv, `${ips.sv}:40002`, `${S1}:5354`, { count: 3, label: 'sv-own' });
    await sendUdp(vm.a, `${ips.a}:40003`, `${S1}:5353`, { count: 3, label: 'a-allowed' });
    await sleep(500);
    expect(received('spoof-a')).toEqual([]);
    expect(received('spoof-outside')).toEqual([]);
    expect(received('a-preopened')).toEqual([]);
    expect(received('sv-own').map((a) => a.from)).toEqual(Array(3).fill(`${UPLINK}:40002`));
    expect(received('a-allowed')).toHaveLength(3);
    expect((await lab().counter('dropped_spoofed_service')) - spoofed).toBeGreaterThanOrEqual(10);
    await vm.sv.run('ip', ['addr', 'del', `${ips.a}/32`, 'dev', 'eth0']);
    await vm.sv.run('ip', ['addr', 'del', '198.18.0.77/32', 'dev', 'eth0']);

    // Flows belong to the NIC the table accepted them for: A opens a UDP flow, is deregistered, and another VM
    // registered with A's MAC (so A's address) sends on that flow: it is not its flow, and nothing arrives.
    await sendUdp(vm.a, `${ips.a}:40100`, `${S1}:5353`, { count: 2, label: 'a-owned' });
    await sleep(200);
    expect(received('a-owned')).toHaveLength(2);
    const other = uuid(0xa9);
    expect(
      (await call('POST', '/v1/deregister', 'kvm-1', { mac: A_MAC, network: 'secure', generation: Date.now() })).json,
    ).toEqual({ status: 'removed' });
    await place(other, ['kvm-1']);
    const again = await register('a', 'kvm-1', other);
    expect(again.json).toMatchObject({ status: 'registered', ip: ips.a });
    const unowned = await lab().counter('dropped_unowned_flow');
    await sendUdp(vm.a, `${ips.a}:40100`, `${S1}:5353`, { count: 3, label: 'a2-unowned' });
    await sleep(300);
    expect(received('a2-unowned')).toEqual([]);
    expect((await lab().counter('dropped_unowned_flow')) - unowned).toBeGreaterThanOrEqual(3);
    // A comes back: its own flows work again.
    await call('POST', '/v1/deregister', 'kvm-1', { mac: A_MAC, network: 'secure', generation: Date.now() });
    await place(other, []);
    expect((await register('a')).json.status).toBe('registered');
    await sendUdp(vm.a, `${ips.a}:40101`, `${S1}:5353`, { count: 2, label: 'a-back' });
    await sleep(300);
    expect(received('a-back')).toHaveLength(2);
  });

  it("another host's token can neither take, nor remove, nor copy A's registration; the launcher's placement rules", async () => {
    const stream = TcpStream.open(vm.a, S1, 443);
    streams.push(stream);
    expect(await stream.echo('before')).toBe(true);
    const before = await lab().table();
    // kvm-2 registers A's NIC ("a migration"), then its own MAC under A's VM, then deregisters A's NIC.
    const take = await register('a', 'kvm-2');
    const copy = await call('POST', '/v1/register', 'kvm-2', {
      vmUuid: VMS.a.vm,
      vmName: 'vm-a',
      mac: VMS.ev.mac,
      network: 'secure',
      generation: Date.now(),
    });
    const remove = await call('POST', '/v1/deregister', 'kvm-2', {
      mac: A_MAC,
      network: 'secure',
      generation: Date.now(),
    });
    const reconcile = await call('POST', '/v1/reconcile', 'kvm-2', {
      generation: Date.now(),
      nics: [
        { vmUuid: VMS.a.vm, vmName: 'vm-a', mac: A_MAC, network: 'secure' },
        { vmUuid: VMS.a.vm, vmName: 'vm-a', mac: VMS.ev.mac, network: 'secure' },
      ],
    });
    expect([take.status, take.json.error.code]).toEqual([403, 'E_NOT_PLACED']);
    expect([copy.status, copy.json.error.code]).toEqual([403, 'E_NOT_PLACED']);
    expect([remove.status, remove.json]).toEqual([200, { status: 'kept-other-host' }]);
    expect(reconcile.json).toMatchObject({ added: [], removed: [] });
    expect(reconcile.json.refused.map((n: { code: string }) => n.code)).toEqual(['E_NOT_PLACED', 'E_NOT_PLACED']);
    expect(await holder('secure', A_MAC)).toBe('kvm-1');
    expect(await holder('secure', VMS.ev.mac)).toBeUndefined();
    expect(await lab().table()).toBe(before);
    // The copycat VM with kvm-2's MAC gets nothing: no lease, nothing at either server.
    const s1 = rx().at(`${S1}:443`).length;
    expect(await dhcpLease(vm.ev, 'eth0', 2)).toBeUndefined();
    expect((await tcpProbe(vm.ev, S1, 443)).outcome).toBe('timeout');
    expect(rx().at(`${S1}:443`).length).toBe(s1);
    // A never noticed: its open connection still carries data.
    expect(await stream.echo('after')).toBe(true);
    const audits = await lab().audits();
    expect(
      audits.filter((e) => e.event === 'refused' && e.principal === 'kvm-2' && e.code === 'E_NOT_PLACED'),
    ).toHaveLength(2);
    expect(audits.some((e) => e.event === 'deregister' && e.outcome === 'kept-other-host')).toBe(true);

    // The launcher takes A off kvm-1: its registration is revoked at once, the connection stops.
    await place(VMS.a.vm, []);
    expect(await holder('secure', A_MAC)).toBeUndefined();
    expect(await stream.echo('revoked')).toBe(false);
    // Back on kvm-1, kvm-1's own deregistration and registration work as ever.
    await place(VMS.a.vm, ['kvm-1']);
    expect((await register('a')).json.status).toBe('registered');
    expect(
      (await call('POST', '/v1/deregister', 'kvm-1', { mac: A_MAC, network: 'secure', generation: Date.now() })).json,
    ).toEqual({ status: 'removed' });
    expect((await register('a')).json.status).toBe('registered');
    expect((await tcpProbe(vm.a, S1, 443)).outcome).toBe('connected');
  });

  it('one MAC on two allow-list networks: each NIC gets its own VM’s list, never the other’s', async () => {
    const s1 = rx().at(`${S1}:443`).length;
    const s2 = rx().at(`${S2}:443`).length;
    // A (secure) may reach S1 only; D (research, the same MAC) S2 only.
    expect((await tcpProbe(vm.a, S2, 443)).outcome).toBe('timeout');
    expect((await tcpProbe(vm.d, S1, 443)).outcome).toBe('timeout');
    expect(rx().at(`${S1}:443`).length).toBe(s1);
    expect(rx().at(`${S2}:443`).length).toBe(s2);
    expect((await tcpProbe(vm.a, S1, 443)).outcome).toBe('connected');
    expect((await tcpProbe(vm.d, S2, 443)).outcome).toBe('connected');
  });

  it('allow-lists too large are refused with a code before anything changes', async () => {
    const before = {
      table: await lab().table(),
      list: (await call('GET', `/v1/vms/${VMS.a.vm}/allow-list`, 'ops')).json,
    };
    const many = await call('PUT', `/v1/vms/${VMS.a.vm}/allow-list`, 'ops', {
      entries: Array.from({ length: 257 }, (_, i) => ({ address: S2, protocol: 'tcp', ports: 1000 + i })),
    });
    const wide = await call('PUT', `/v1/vms/${VMS.a.vm}/allow-list`, 'ops', {
      entries: [{ address: '0.0.0.0/1', protocol: 'tcp', ports: '2-65534' }],
    });
    expect([many.status, many.json.error.code]).toEqual([422, 'E_ALLOW_LIST_TOO_LARGE']);
    expect([wide.status, wide.json.error.code]).toEqual([422, 'E_ALLOW_LIST_TOO_LARGE']);
    expect(wide.json.error.message).toMatch(/at most 256 set elements/);
    expect({
      table: await lab().table(),
      list: (await call('GET', `/v1/vms/${VMS.a.vm}/allow-list`, 'ops')).json,
    }).toEqual(before);
    expect((await tcpProbe(vm.a, S2, 1000)).outcome).toBe('timeout');
    expect((await tcpProbe(vm.a, S1, 443)).outcome).toBe('connected');
  });

  it('filling the range: unplaced VMs are refused, and one host stops at its caps; others still register', async () => {
    const service = (i: number) =>
      `52:54:00:c0:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const nic = (vmUuid: string, i: number) => ({
      vmUuid,
      vmName: `fill-${i}`,
      mac: service(i),
      network: 'service',
      generation: 1,
    });
    // 60 NICs of VMs the launcher placed nowhere: every one refused.
    const unplaced = await Promise.all(
      Array.from({ length: 60 }, (_, i) => call('POST', '/v1/register', 'kvm-3', nic(uuid(0xf000 + i), i))),
    );
    expect(new Set(unplaced.map((r) => `${r.status} ${r.json.error?.code}`))).toEqual(new Set(['403 E_NOT_PLACED']));
    // 12 VMs placed on kvm-3, five NICs each: four per VM, forty per host.
    const outcomes: string[] = [];
    for (let v = 0; v < 12; v++) {
      await place(uuid(0xf100 + v), ['kvm-3']);
      for (let n = 0; n < 5; n++) {
        const r = await call('POST', '/v1/register', 'kvm-3', nic(uuid(0xf100 + v), 100 + v * 5 + n));
        outcomes.push(r.status === 200 ? 'ok' : r.json.error.code);
      }
    }
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(40);
    expect(outcomes.filter((o) => o === 'E_QUOTA_EXCEEDED')).toHaveLength(20);
    expect((await call('GET', '/v1/registrations', 'kvm-3')).json.registrations).toHaveLength(40);
    // Another host, placed, still registers on the same network and gets its lease.
    await call('POST', '/v1/deregister', 'kvm-1', { mac: VMS.sv.mac, network: 'service', generation: Date.now() });
    expect((await register('sv')).json).toMatchObject({ status: 'registered', ip: ips.sv });
    expect(await dhcpLease(vm.sv, 'eth0')).toBe(ips.sv);
    const audits = await lab().audits();
    expect(audits.some((e) => e.event === 'refused' && e.principal === 'kvm-3' && e.code === 'E_QUOTA_EXCEEDED')).toBe(
      true,
    );
    // The launcher's placements gone: kvm-3 holds nothing.
    for (let v = 0; v < 12; v++) await place(uuid(0xf100 + v), []);
    expect((await call('GET', '/v1/registrations', 'kvm-3')).json.registrations).toEqual([]);
  });

  it('token add refuses to change an existing token’s role without --change-role', async () => {
    const add = (...args: string[]) =>
      execa(process.execPath, [CLI, 'backend', 'token', 'add', ...args, '--store', lab().paths.store], {
        reject: false,
      });
    const issued = (await add('ops2', '--admin')).stdout.trim();
    const refused = await add('ops2');
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/token add ops2: expected role admin .* found host: pass --change-role/);
    const asAdmin = await fetch(`${API_URL}/v1/allow-lists`, {
      headers: { authorization: `Bearer ${issued}` },
    });
    expect(asAdmin.status).toBe(200);
    const changed = await add('ops2', '--change-role');
    expect(changed.exitCode).toBe(0);
    const old = await fetch(`${API_URL}/v1/allow-lists`, {
      headers: { authorization: `Bearer ${issued}` },
    });
    expect(old.status).toBe(401);
  });

  it('2,000 deregistrations of never-registered MACs and request floods change nothing and are rate-limited', async () => {
    const kept = tombstones();
    const statuses = new Map<string, number>();
    const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
    for (let batch = 0; batch < 100; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const n = batch * 20 + i;
          const mac = `52:54:00:d0:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
          return call('POST', '/v1/deregister', 'kvm-4', { mac, network: 'secure', generation: 1 });
        }),
      );
      for (const a of answers) count(a.status === 200 ? a.json.status : a.json.error.code);
    }
    expect(tombstones()).toBe(kept);
    expect(statuses.get('absent')).toBe(600);
    expect(statuses.get('E_RATE_LIMITED')).toBe(1400);
    expect((await call('GET', '/metrics', 'none')).status).toBe(401);
    // Without a valid token: per address, 30 a minute (the one above included).
    const forged = await Promise.all(Array.from({ length: 50 }, () => call('GET', '/v1/registrations', 'forged')));
    const unauthenticated = forged.filter((r) => r.status === 401).length;
    expect(unauthenticated).toBeLessThanOrEqual(29);
    expect(forged.filter((r) => r.status === 429 && r.json.error.code === 'E_RATE_LIMITED')).toHaveLength(
      50 - unauthenticated,
    );
    // Other tokens are not slowed: kvm-1 and the admin get their answers.
    expect((await call('GET', '/v1/registrations', 'kvm-1')).status).toBe(200);
    expect((await tcpProbe(vm.a, S1, 443)).outcome).toBe('connected');
    // /metrics: only with a token.
    const metrics = await fetch(`${API_URL}/metrics`, {
      headers: { authorization: `Bearer ${lab().tokens.prometheus}` },
    });
    expect(metrics.status).toBe(200);
    const rateLimited = Number(/ticrypt_errors_total\{code="E_RATE_LIMITED"\} (\d+)/.exec(await metrics.text())?.[1]);
    expect(rateLimited).toBeGreaterThanOrEqual(1421);
    // The audit keeps every refusal but folds a flood: one line per token or address per 10 s.
    const limited = (await lab().audits()).filter((e) => e.code === 'E_RATE_LIMITED');
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.length).toBeLessThan(10);
  });

  it("answers ARP on a VM network only for that network's gateway", async () => {
    const [mgmt, uplink, otherGateway, ownGateway] = await Promise.all([
      arpReplies(vm.c, 'eth0', '198.18.0.1'),
      arpReplies(vm.c, 'eth0', UPLINK),
      arpReplies(vm.c, 'eth0', '192.168.122.1'),
      arpReplies(vm.c, 'eth0', '192.168.128.1'),
    ]);
    expect({ mgmt, uplink, otherGateway }).toEqual({ mgmt: 0, uplink: 0, otherGateway: 0 });
    expect(ownGateway).toBeGreaterThan(0);
    const [fromService, serviceGateway] = await Promise.all([
      arpReplies(vm.sv, 'eth0', '192.168.128.1'),
      arpReplies(vm.sv, 'eth0', '192.168.122.1'),
    ]);
    expect([fromService, serviceGateway > 0]).toEqual([0, true]);
  });

  it('flush ruleset: nothing forwards in the window, /healthz says so, the table is back in seconds, audited', async () => {
    const start = rx().arrivals.length;
    // A floods an allowed server; the service VM floods the open internet; both ~1 datagram per ms for ~10 s.
    const floods = [
      sendUdp(vm.a, `${ips.a}:41000`, `${S1}:5353`, { count: 8000, intervalMs: 1, label: 'flood-a' }),
      sendUdp(vm.sv, `${ips.sv}:41001`, `${S1}:5354`, { count: 8000, intervalMs: 1, label: 'flood-sv' }),
    ];
    await sleep(1500);
    expect(received('flood-a').length).toBeGreaterThan(100);
    const health: { t: number; status: number; body: string }[] = [];
    let polling = true;
    const healthPoll = (async () => {
      // As fast as it answers: at this scale the window lasts tens of ms.
      while (polling) {
        const r = await fetch(`${API_URL}/healthz`).catch(() => undefined);
        if (r) health.push({ t: Date.now(), status: r.status, body: await r.text() });
        else await sleep(5);
      }
    })();
    const flushStart = Date.now();
    await backend.run('nft', ['flush', 'ruleset']);
    const flushDone = Date.now();
    // The table was absent from the flush to (at least) the start of the last poll that did not find it.
    let lastAbsent = flushDone;
    let back = 0;
    // A registration sent in the window: retried on 503 as the hook's spool would, it goes through once the
    // table is back (a change the kernel refuses while the table is gone answers 503, never 500).
    const answers: string[] = [];
    const registrationDuringWindow = (async () => {
      await place(uuid(0xe1), ['kvm-1']);
      for (;;) {
        const r = await call('POST', '/v1/register', 'kvm-1', {
          vmUuid: uuid(0xe1),
          vmName: 'during-window',
          mac: '52:54:00:e0:00:01',
          network: 'secure',
          generation: 1,
        });
        answers.push(r.status === 200 ? '200' : `${r.status} ${r.json.error.code}`);
        if (r.status !== 503) return r;
        await sleep(200);
      }
    })();
    while (Date.now() - flushDone < 30_000) {
      const pollStart = Date.now();
      const chains = await backend.run('nft', ['-j', 'list', 'chains']);
      const listed = (JSON.parse(chains.stdout) as { nftables: { chain?: { table: string; name: string } }[] })
        .nftables;
      if (listed.some((item) => item.chain?.table === 'ticrypt' && item.chain.name === 'source')) {
        back = Date.now();
        break;
      }
      lastAbsent = pollStart;
      await sleep(5);
    }
    expect(back).toBeGreaterThan(0);
    await sleep(2000);
    polling = false;
    await healthPoll;
    const [sentA = 0, sentSv = 0] = await Promise.all(floods);
    // Anything forwarded while the table is absent leaves un-masqueraded (the issue saw exactly that): every
    // datagram that arrived came through the table, from the uplink's address.
    const flood = rx()
      .arrivals.slice(start)
      .filter((a) => /^flood-(a|sv) /.test(a.data ?? ''));
    expect(flood.filter((a) => !a.from.startsWith(`${UPLINK}:`))).toEqual([]);
    // The ones sent while the table was gone were dropped: a gap around the flush, in both floods.
    const seqs = (label: string) => new Set(received(label).map((a) => Number(a.data?.split(' ')[1])));
    const gap = (label: string, sent: number) => {
      const got = seqs(label);
      const missing = Array.from({ length: sent }, (_, i) => i).filter((i) => !got.has(i));
      return { missing: missing.length, first: missing[0], last: missing.at(-1) };
    };
    const gapA = gap('flood-a', sentA);
    const gapSv = gap('flood-sv', sentSv);
    // In flight when the table went: 5 ms. (At this scale the table may be back before the first poll.)
    const leaked = flood.filter((a) => a.t > flushDone + 5 && a.t < lastAbsent);
    const resumed = received('flood-a').filter((a) => a.t > back);
    console.log(
      `flush ruleset: the flush took ${flushDone - flushStart} ms; table back ${back - flushDone} ms after it ` +
        `(polled absent for ${lastAbsent - flushDone} ms, ${leaked.length} arrivals then); datagrams lost around it: ` +
        `A ${gapA.missing} of ${sentA}, the service VM ${gapSv.missing} of ${sentSv}; none arrived un-masqueraded; ` +
        `${resumed.length} of A's arrived after`,
    );
    expect(leaked).toEqual([]);
    expect(gapA.missing).toBeGreaterThan(0);
    expect(gapSv.missing).toBeGreaterThan(0);
    expect(back - flushDone).toBeLessThan(10_000);
    expect(resumed.length).toBeGreaterThan(100);
    expect(received('flood-sv').filter((a) => a.t > back).length).toBeGreaterThan(100);
    expect(health.at(-1)?.status).toBe(200);
    expect((await registrationDuringWindow).status).toBe(200);
    expect(answers.filter((a) => a !== '200' && a !== '503 E_FIREWALL_UNAVAILABLE')).toEqual([]);
    const guard = (await lab().audits()).filter((e) => e.event === 'guard');
    expect(guard.map((e) => `${String(e.outcome)} ${String(e.what)}`)).toEqual(
      expect.arrayContaining(['lost table', 'recovered table']),
    );

    // /healthz during a loss. The window above can close (a rebuild in ~100 ms) before a poll lands when the
    // floods load both cores, so the loss is made observable: a second flush right after a repair is held
    // open by the guard's pacing (no rebuild sooner than 1 s after the last one). Tried up to 3 times.
    expect(health.filter((h) => h.status === 503).every((h) => /table inet ticrypt/.test(h.body))).toBe(true);
    const hasTable = async (): Promise<boolean> => {
      const listed = (
        JSON.parse((await backend.run('nft', ['-j', 'list', 'chains'])).stdout) as {
          nftables: { chain?: { table: string; name: string } }[];
        }
      ).nftables;
      return listed.some((item) => item.chain?.table === 'ticrypt' && item.chain.name === 'source');
    };
    const untilTable = async (): Promise<void> => {
      for (let i = 0; i < 2000 && !(await hasTable()); i++) await sleep(5);
      expect(await hasTable()).toBe(true);
    };
    const seen: { status: number; body: string }[] = [];
    for (let attempt = 0; attempt < 3 && !seen.some((h) => h.status === 503); attempt++) {
      await backend.run('nft', ['flush', 'ruleset']);
      await untilTable();
      await sleep(300); // the guard's table monitor is listening again
      await backend.run('nft', ['flush', 'ruleset']);
      for (let i = 0; i < 100; i++) {
        const r = await fetch(`${API_URL}/healthz`);
        seen.push({ status: r.status, body: await r.text() });
        if (r.status === 200 && seen.some((h) => h.status === 503)) break;
        await sleep(20);
      }
      await untilTable();
    }
    expect(seen.find((h) => h.status === 503)?.body).toMatch(/table inet ticrypt/);
    expect(seen.at(-1)?.status).toBe(200);

    // A fail-closed rule deleted by hand is put back within the check period, and audited.
    const rule = (await backend.run('ip', ['-j', 'rule', 'show'])).stdout;
    expect(rule).toContain(`"iif":"${lab().gatewayInterface('secure')}"`);
    await backend.run('ip', ['rule', 'del', 'pref', '100']);
    let restored = false;
    for (let i = 0; i < 100 && !restored; i++) {
      await sleep(100);
      restored = (await backend.run('ip', ['rule', 'show', 'pref', '100'])).stdout.includes('blackhole');
    }
    expect(restored).toBe(true);
    expect((await lab().audits()).some((e) => e.event === 'guard' && e.what === 'rules')).toBe(true);
  });
});
