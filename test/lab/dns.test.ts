/**
 * Issue 10's acceptance, against the real service (backend-lab.ts): the DNS
 * front in `backend serve` answers each secure VM by its own allow-list,
 * through a real resolver (dnsmasq, every query it gets logged) in the
 * "internet" namespace, and opens exactly what each answer names in the
 * real table inet ticrypt before the VM gets it. With issue 9's table: the
 * front answers only registered, placed, non-revoked NICs; what it opens is
 * keyed by the NIC's id, so a flow it let through is that NIC's alone; and
 * after the guard rebuilds a lost table, the first answer opens again.
 *
 * The lab's "internet" is TEST-NET (203.0.113.0/24, 192.0.2.0/24), which is
 * special-use: every entry that should open such an answer names the range
 * (`specialRanges`), as a site would name a private range it trusts.
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNetwork } from '../../src/site/lookup.js';
import { API_URL, BackendLab, labUuid, RESOLVER } from './backend-lab.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';
import { configure, dig, tcpProbe, TcpStream } from './probes.js';
import { Receiver, sendUdp } from './receiver.js';

const available = labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'dig', 'socat', 'conntrack', 'ip', 'ethtool', 'perl');

const ALLOWED = '203.0.113.10';
const OTHER = '203.0.113.20';
const SHARED = '203.0.113.30';
const WILD = '203.0.113.40';
const TARGET = '203.0.113.50';
const FLOW = '203.0.113.60';
const INTRANET = '10.9.9.9';
const TEST_NET = ['203.0.113.0/24'];
const FIRST_PACKETS = 200;

const VMS = {
  a: { network: 'secure', mac: '52:54:00:d0:00:01', vm: labUuid(0xd1) },
  b: { network: 'secure', mac: '52:54:00:d0:00:02', vm: labUuid(0xd2) },
  c: { network: 'secure', mac: '52:54:00:d0:00:03', vm: undefined },
  o: { network: 'secure', mac: '52:54:00:d0:00:05', vm: labUuid(0xd5) },
  sv: { network: 'service', mac: '52:54:00:d0:00:04', vm: labUuid(0xd4) },
} as const;
type VmName = keyof typeof VMS;

const https = (domain: string, specialRanges: readonly string[] = TEST_NET) => ({
  domain,
  protocol: 'tcp',
  ports: 443,
  specialRanges,
});

describe.skipIf(!available)('controlled DNS per VM: the DNS front in the real service (lab)', () => {
  let built: BackendLab<VmName> | undefined;
  let receiver: Receiver | undefined;
  const streams: TcpStream[] = [];
  const ips = {} as Record<VmName, string>;
  let vm: Record<VmName, BackendLab<VmName>['vm'][VmName]>;
  let gw: string;
  const lab = (): BackendLab<VmName> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const queries = async (pattern: RegExp) => (await lab().resolverQueries()).filter((line) => pattern.test(line));
  /** The NIC id the registry gave a VM's NIC now (its elements' and flows' owner), from the admin listing. */
  const nicId = async (name: VmName): Promise<number> => {
    const { json } = await lab().call('GET', '/v1/registrations', 'ops');
    const found = (json.registrations as { mac: string; network: string; nicId: number }[]).find(
      (r) => r.mac === VMS[name].mac && r.network === VMS[name].network,
    );
    if (found === undefined) throw new Error(`${name} is not registered`);
    return found.nicId;
  };
  /** The owner (NIC id) of each element of a dns_* set, with the element. */
  const owned = async (set: string) =>
    (await lab().setElements(set)).map((e) => ({ owner: Number(e.split(' . ')[0]), element: e }));
  const resolver = [
    'local-ttl=300', // dnsmasq gives its own records TTL 0 by default: nothing would be cached
    `address=/allowed.example/${ALLOWED}`,
    'txt-record=secret.allowed.example,"the upstream would answer this"',
    'txt-record=control.allowed.example,"control"',
    `address=/other.example/${OTHER}`,
    `host-record=shared.example,${SHARED}`,
    `address=/wild.example/${WILD}`,
    `host-record=target.example,${TARGET}`,
    'cname=alias.example,target.example',
    `host-record=intranet.corp.example,${INTRANET}`,
    ...Array.from({ length: FIRST_PACKETS }, (_, i) => `host-record=h${i}.first.example,192.0.2.${i + 1}`),
    `host-record=flow.example,${FLOW}`,
  ];

  beforeAll(async () => {
    built = await BackendLab.create(runPrefix(), {
      site: {
        backend: { upstreamDns: [RESOLVER] },
        networks: { secure: { preset: 'secure' }, service: { preset: 'service' }, datain: { preset: 'datain' } },
      },
      vms: VMS,
      internet: [
        ...[ALLOWED, OTHER, SHARED, WILD, TARGET, FLOW].map((host) => `${host}/24`),
        `${RESOLVER}/24`,
        `${INTRANET}/32`,
      ],
      routes: [`${INTRANET}/32`, '192.0.2.0/24'],
      servers: [ALLOWED, OTHER, SHARED, WILD, TARGET, INTRANET].map((host) => `${host}:443`),
      resolver,
      tokens: { 'kvm-1': [], ops: ['--admin'], prometheus: ['--metrics'] },
    });
    vm = built.vm;
    gw = findNetwork(built.site, 'secure').gateway;
    receiver = await Receiver.start(built.internet, [`udp:${FLOW}:5353`]);
    await built.startService();
    for (const name of ['a', 'b', 'o', 'sv'] as const) {
      ips[name] = await built.register(name);
      const network = findNetwork(built.site, VMS[name].network);
      await configure(vm[name], 'eth0', `${ips[name]}/${network.subnet.split('/')[1]}`, network.gateway);
    }
    await configure(vm.c, 'eth0', '192.168.200.200/17', gw);
    await built.allow('a', [https('allowed.example'), https('shared.example'), https('*.wild.example')]);
    await built.allow('b', [https('other.example'), https('shared.example')]);
    await built.allow('o', [{ address: OTHER, protocol: 'udp', ports: 9 }]); // an allow-list that names no domain
  });

  afterAll(async () => {
    for (const stream of streams) await stream.close();
    await receiver?.stop();
    await built?.remove();
  });

  it('gives an unregistered VM no answer at all: the source check drops it before the front, and counts it', async () => {
    const before = await lab().counter('dropped_unregistered_secure');
    expect((await dig(vm.c, gw, 'allowed.example', 1)).status).toBe('timeout');
    expect((await dig(vm.c, gw, 'allowed.example', 1, 'A', { tcp: true })).status).toBe('timeout');
    expect(await lab().counter('dropped_unregistered_secure')).toBeGreaterThan(before);
  });

  it('lets two VMs with different entries each resolve and reach only their own', async () => {
    expect(await dig(vm.a, gw, 'allowed.example')).toEqual({ status: 'NOERROR', answers: [ALLOWED] });
    expect(await dig(vm.b, gw, 'other.example', 2, 'A', { tcp: true })).toEqual({
      status: 'NOERROR',
      answers: [OTHER],
    });
    // Neither resolves the other's name, and upstream is never asked for it on their behalf.
    expect(await dig(vm.a, gw, 'other.example')).toEqual({ status: 'NXDOMAIN', answers: [] });
    expect(await dig(vm.b, gw, 'allowed.example')).toEqual({ status: 'NXDOMAIN', answers: [] });
    // A VM whose allow-list names no domain resolves nobody's: not even a name another VM was just answered.
    expect(await dig(vm.o, gw, 'allowed.example')).toEqual({ status: 'NXDOMAIN', answers: [] });
    expect(await dig(vm.o, gw, 'other.example', 2, 'A', { tcp: true })).toEqual({ status: 'NXDOMAIN', answers: [] });
    expect(await queries(/query\[A\] other\.example/)).toHaveLength(1);
    expect(await queries(/query\[A\] allowed\.example/)).toHaveLength(1);
    const [aOwn, aOther, bOwn, bOther] = await Promise.all([
      tcpProbe(vm.a, ALLOWED, 443),
      tcpProbe(vm.a, OTHER, 443),
      tcpProbe(vm.b, OTHER, 443),
      tcpProbe(vm.b, ALLOWED, 443),
    ]);
    expect([aOwn.outcome, aOther.outcome, bOwn.outcome, bOther.outcome]).toEqual([
      'connected',
      'timeout',
      'connected',
      'timeout',
    ]);
  });

  it('sends the TXT tunnel and long labels nowhere: nothing of them reaches the upstream resolver', async () => {
    // The control: the resolver answers TXT, and logs it, when asked directly.
    expect((await dig(lab().backend, RESOLVER, 'control.allowed.example', 2, 'TXT')).status).toBe('NOERROR');
    expect(await queries(/query\[TXT\] control\.allowed\.example/)).toHaveLength(1);
    const label = '6578706f7274207365637265742064617461206865726520706c6561'; // 56 hex digits: 28 bytes out
    expect((await dig(vm.a, gw, 'secret.allowed.example', 2, 'TXT')).status).toBe('REFUSED');
    expect((await dig(vm.a, gw, 'allowed.example', 2, 'NULL')).status).toBe('REFUSED');
    expect((await dig(vm.a, gw, 'allowed.example', 2, 'ANY')).status).toBe('REFUSED');
    expect((await dig(vm.a, gw, `${label}.allowed.example`)).status).toBe('NXDOMAIN');
    expect((await dig(vm.a, gw, `${label}.wild.example`)).status).toBe('REFUSED');
    expect(await queries(/secret\.allowed\.example|6578706f|query\[NULL\]|query\[ANY\]/)).toEqual([]);
  });

  it('answers a wildcard entry for a sub-name, not for its parent', async () => {
    expect(await dig(vm.a, gw, 'www.wild.example')).toEqual({ status: 'NOERROR', answers: [WILD] });
    expect(await dig(vm.a, gw, 'wild.example')).toEqual({ status: 'NOERROR', answers: [] });
    expect(await queries(/query\[A\] wild\.example/)).toEqual([]);
    expect((await tcpProbe(vm.a, WILD, 443)).outcome).toBe('connected');
  });

  it('judges every name of a CNAME chain', async () => {
    await lab().allow('a', [
      https('allowed.example'),
      https('shared.example'),
      https('*.wild.example'),
      https('alias.example'),
    ]);
    expect(await dig(vm.a, gw, 'alias.example')).toEqual({ status: 'NXDOMAIN', answers: [] });
    expect((await tcpProbe(vm.a, TARGET, 443)).outcome).toBe('timeout');
    await lab().allow('b', [
      https('other.example'),
      https('shared.example'),
      https('alias.example'),
      https('target.example'),
    ]);
    expect(await dig(vm.b, gw, 'alias.example')).toEqual({ status: 'NOERROR', answers: [TARGET] });
    const [a, b] = await Promise.all([tcpProbe(vm.a, TARGET, 443), tcpProbe(vm.b, TARGET, 443)]);
    expect([a.outcome, b.outcome]).toEqual(['timeout', 'connected']);
  });

  it('opens an answer served from the cache for a second VM allowed the same name', async () => {
    expect(await dig(vm.a, gw, 'shared.example')).toEqual({ status: 'NOERROR', answers: [SHARED] });
    expect((await tcpProbe(vm.b, SHARED, 443)).outcome).toBe('timeout'); // not opened for b by a's answer
    expect(await dig(vm.b, gw, 'shared.example')).toEqual({ status: 'NOERROR', answers: [SHARED] });
    expect(await queries(/query\[A\] shared\.example/)).toHaveLength(1); // b's answer came from the cache
    expect((await tcpProbe(vm.b, SHARED, 443)).outcome).toBe('connected');
  });

  it('opens nothing for a private answer unless the entry names its range', async () => {
    await lab().allow('a', [https('intranet.corp.example')]);
    expect(await dig(vm.a, gw, 'intranet.corp.example')).toEqual({ status: 'NOERROR', answers: [] });
    expect((await tcpProbe(vm.a, INTRANET, 443)).outcome).toBe('timeout');
    expect((await lab().setElements('dns_p16')).filter((e) => e.includes(INTRANET))).toEqual([]);
    // The control: named, the same answer opens it.
    await lab().allow('a', [https('intranet.corp.example', ['10.9.0.0/16'])]);
    expect(await dig(vm.a, gw, 'intranet.corp.example')).toEqual({ status: 'NOERROR', answers: [INTRANET] });
    expect((await tcpProbe(vm.a, INTRANET, 443)).outcome).toBe('connected');
  });

  it('closes what an allow-list change no longer allows', async () => {
    // a lost allowed.example and shared.example in the last test: what their answers opened is gone.
    const a = await nicId('a');
    const elements = (await owned('dns_p16')).filter((e) => e.owner === a).map((e) => e.element);
    expect(elements.some((e) => e.includes(INTRANET))).toBe(true);
    expect(elements.some((e) => e.includes(SHARED) || e.includes(ALLOWED))).toBe(false);
    expect((await tcpProbe(vm.a, SHARED, 443)).outcome).toBe('timeout');
  });

  it('keeps a connection its answer opened after the element expires, and opens no new one without an answer', async () => {
    // a's entry names the intranet's range since the private-answer test: its answer opens 10.9.9.9:443.
    expect(await dig(vm.a, gw, 'intranet.corp.example')).toEqual({ status: 'NOERROR', answers: [INTRANET] });
    const stream = TcpStream.open(vm.a, INTRANET, 443);
    streams.push(stream);
    expect(await stream.echo('before expiry')).toBe(true);
    const a = await nicId('a');
    const [element, ...more] = (await owned('dns_p16')).filter((e) => e.owner === a && e.element.includes(INTRANET));
    expect(element).toBeDefined();
    expect(more).toEqual([]);
    // Let the kernel expire it now rather than in two minutes: the same key, 1 s left (what its timeout does).
    const [id = '', address = '', proto = '', port = ''] = (element?.element ?? '').split(' . ');
    const key = `0x${Number(id).toString(16).padStart(8, '0')} . ${address} . ${proto} . ${port}`;
    await lab().backend.run('nft', [
      'add',
      'element',
      'inet',
      'ticrypt',
      'dns_p16',
      `{ ${key} timeout 1s expires 1s }`,
    ]);
    let gone = false;
    for (let i = 0; i < 60 && !gone; i++) {
      await sleep(100);
      gone = (await lab().setElements('dns_p16')).every((e) => !e.includes(INTRANET));
    }
    expect(gone).toBe(true);
    // The established connection is its owner's flow (ct mark = NIC id): it keeps working.
    expect(await stream.echo('after expiry')).toBe(true);
    // A new connection is not: the element mattered, and only a new answer opens it again.
    expect((await tcpProbe(vm.a, INTRANET, 443)).outcome).toBe('timeout');
  });

  it(`accepts the first packet right after each answer (${FIRST_PACKETS} names: 0 drops)`, async () => {
    await lab().allow('a', [
      { domain: '*.first.example', protocol: 'udp', ports: 9999, specialRanges: ['192.0.2.0/24'] },
    ]);
    await lab().internet.run('nft', ['-f', '-'], {
      input: [
        'table ip probe {',
        '  counter arrived { }',
        '  chain pre { type filter hook prerouting priority -300; policy accept; udp dport 9999 counter name arrived; }',
        '}',
        '',
      ].join('\n'),
    });
    const droppedBefore = await lab().counter('dropped_egress');
    const run = await execa(
      'ip',
      [
        'netns',
        'exec',
        vm.a.name,
        process.execPath,
        resolve(import.meta.dirname, 'first-packet.mjs'),
        gw,
        String(FIRST_PACKETS),
        'h{i}.first.example',
        '9999',
      ],
      { timeout: 120_000 },
    );
    const result = JSON.parse(run.stdout) as { answered: number; sent: number; failed: string[] };
    expect(result).toEqual({ answered: FIRST_PACKETS, sent: FIRST_PACKETS, failed: [] });
    const counted = await lab().internet.run('nft', ['list', 'counter', 'ip', 'probe', 'arrived']);
    expect(Number(/packets (\d+)/.exec(counted.stdout)?.[1])).toBe(FIRST_PACKETS);
    expect(await lab().counter('dropped_egress')).toBe(droppedBefore);
  });

  it('re-opens with the first answer after a service restart (the table was rebuilt empty)', async () => {
    await lab().allow('b', [https('other.example')]);
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
    const first = lab().services.at(-1);
    await first?.stop();
    await lab().startService();
    expect(await lab().setElements('dns_p16')).toEqual([]);
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('timeout');
    expect(await dig(vm.b, gw, 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
  });

  it('re-opens with the first answer after the guard rebuilt a lost table (nft flush ruleset), not before', async () => {
    expect(await dig(vm.b, gw, 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
    const b = await nicId('b');
    expect((await owned('dns_p16')).filter((e) => e.owner === b && e.element.includes(OTHER))).toHaveLength(1);
    const asked = (await queries(/query\[A\] other\.example/)).length;
    await lab().backend.run('nft', ['flush', 'ruleset']);
    // The guard sees the loss, rebuilds from the store (the dns_* sets come back empty) and reports healthy again.
    let healthy = false;
    for (let i = 0; i < 200 && !healthy; i++) {
      await sleep(50);
      const chains = (await lab().backend.run('nft', ['-j', 'list', 'chains'])).stdout;
      healthy =
        chains.includes('"allow_egress"') &&
        (await fetch(`${API_URL}/healthz`).then(
          (r) => r.status === 200,
          () => false,
        ));
    }
    expect(healthy).toBe(true);
    expect(await lab().setElements('dns_p16')).toEqual([]);
    // The front does not believe the answer's element is still open: the same answer, from its cache, writes it again.
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('timeout');
    expect(await dig(vm.b, gw, 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    expect(await queries(/query\[A\] other\.example/)).toHaveLength(asked);
    expect((await owned('dns_p16')).filter((e) => e.owner === b && e.element.includes(OTHER))).toHaveLength(1);
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
    const guard = (await lab().audits())
      .filter((e) => e.event === 'guard')
      .map((e) => `${String(e.outcome)} ${String(e.what)}`);
    expect(guard).toEqual(expect.arrayContaining(['lost table', 'recovered table']));
  });

  it("keys what an answer opens by the NIC id: the flow is that NIC's alone, not a later holder of its MAC and IP", async () => {
    const rx = (): Receiver => {
      if (receiver === undefined) throw new Error('no receiver');
      return receiver;
    };
    const arrived = (label: string) => rx().arrivals.filter((a) => a.data?.startsWith(`${label} `));
    await lab().allow('o', [{ domain: 'flow.example', protocol: 'udp', ports: 5353, specialRanges: TEST_NET }]);
    expect(await dig(vm.o, gw, 'flow.example')).toEqual({ status: 'NOERROR', answers: [FLOW] });
    const id = await nicId('o');
    expect((await owned('dns_p16')).filter((e) => e.owner === id).map((e) => e.element)).toEqual([
      expect.stringContaining(`${FLOW} . udp . 5353`),
    ]);
    await sendUdp(vm.o, `${ips.o}:40200`, `${FLOW}:5353`, { count: 2, label: 'o-owned' });
    await sleep(300);
    expect(arrived('o-owned')).toHaveLength(2);
    // The flow the answer let through carries the NIC's id as its conntrack mark, as an allow-list flow does.
    const tracked = await lab().backend.run('conntrack', ['-L', '-p', 'udp', '--dport', '5353', '-d', FLOW]);
    expect(tracked.stdout).toContain(`mark=${id} `);
    // O is deregistered; another VM is registered with O's MAC (so O's address) and sends on O's flow: not its flow.
    const other = labUuid(0xd9);
    const deregister = await lab().call('POST', '/v1/deregister', 'kvm-1', {
      mac: VMS.o.mac,
      network: 'secure',
      generation: 10,
    });
    expect(deregister.json).toEqual({ status: 'removed' });
    await lab().place(other, ['kvm-1']);
    const again = await lab().call('POST', '/v1/register', 'kvm-1', {
      vmUuid: other,
      vmName: 'vm-o2',
      mac: VMS.o.mac,
      network: 'secure',
      generation: 11,
    });
    expect(again.json).toMatchObject({ status: 'registered', ip: ips.o });
    const unowned = await lab().counter('dropped_unowned_flow');
    await sendUdp(vm.o, `${ips.o}:40200`, `${FLOW}:5353`, { count: 3, label: 'o2-unowned' });
    await sleep(300);
    expect(arrived('o2-unowned')).toEqual([]);
    expect((await lab().counter('dropped_unowned_flow')) - unowned).toBeGreaterThanOrEqual(3);
    // The new holder's answers are its own: it may not resolve O's name at all.
    expect(await dig(vm.o, gw, 'flow.example')).toEqual({ status: 'NXDOMAIN', answers: [] });
  });

  it('answers a NIC only while the registry holds it: the launcher removing its placement cuts its DNS and its flows', async () => {
    await lab().allow('b', [https('other.example')]);
    expect(await dig(vm.b, gw, 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    const stream = TcpStream.open(vm.b, OTHER, 443);
    streams.push(stream);
    expect(await stream.echo('before')).toBe(true);
    const dropped = await lab().counter('dropped_unregistered_secure');
    await lab().place(VMS.b.vm, []);
    // Revoked: no answer (UDP or TCP), and the connection the answer opened stops.
    expect((await dig(vm.b, gw, 'other.example', 1)).status).toBe('timeout');
    expect((await dig(vm.b, gw, 'other.example', 1, 'A', { tcp: true })).status).toBe('timeout');
    expect(await stream.echo('revoked')).toBe(false);
    expect(await lab().counter('dropped_unregistered_secure')).toBeGreaterThan(dropped);
    // Placed and registered again: answers again, and what it opens is keyed by its new id.
    expect(await lab().register('b', 20)).toBe(ips.b);
    expect(await dig(vm.b, gw, 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    const b = await nicId('b');
    expect((await owned('dns_p16')).filter((e) => e.owner === b && e.element.includes(OTHER))).toHaveLength(1);
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
  });

  it('leaves service VMs open DNS through dnsmasq, and counts the front results on /metrics', async () => {
    expect(await dig(vm.sv, '192.168.122.1', 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    expect(await dig(vm.sv, '192.168.122.1', 'secret.allowed.example', 2, 'TXT')).toMatchObject({ status: 'NOERROR' });
    const metrics = await (
      await fetch(`${API_URL}/metrics`, { headers: { authorization: `Bearer ${lab().tokens.prometheus}` } })
    ).text();
    expect(metrics).toMatch(/ticrypt_dns_queries_total\{network="secure",result="answered"\} [1-9]/);
    expect(metrics).toMatch(/ticrypt_dns_transactions_total [1-9]/);
  });
});
