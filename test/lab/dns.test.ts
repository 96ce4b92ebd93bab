/**
 * Issue 10's acceptance, against the real service (backend-lab.ts): the DNS
 * front in `backend serve` answers each secure VM by its own allow-list,
 * through a real resolver (dnsmasq, every query it gets logged) in the
 * "internet" namespace, and opens exactly what each answer names in the
 * real table inet ticrypt before the VM gets it.
 *
 * The lab's "internet" is TEST-NET (203.0.113.0/24, 192.0.2.0/24), which is
 * special-use: every entry that should open such an answer names the range
 * (`specialRanges`), as a site would name a private range it trusts.
 */
import { resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNetwork } from '../../src/site/lookup.js';
import { API_URL, BackendLab, labUuid, RESOLVER } from './backend-lab.js';
import { labAvailable } from './prereq.js';
import { configure, dig, tcpProbe } from './probes.js';

const lab = labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'dig', 'socat', 'ip', 'ethtool', 'perl');

const ALLOWED = '203.0.113.10';
const OTHER = '203.0.113.20';
const SHARED = '203.0.113.30';
const WILD = '203.0.113.40';
const TARGET = '203.0.113.50';
const INTRANET = '10.9.9.9';
const TEST_NET = ['203.0.113.0/24'];
const FIRST_PACKETS = 200;

const VMS = {
  a: { network: 'secure', vlan: 1081, mac: '52:54:00:d0:00:01', vm: labUuid(0xd1) },
  b: { network: 'secure', vlan: 1081, mac: '52:54:00:d0:00:02', vm: labUuid(0xd2) },
  c: { network: 'secure', vlan: 1081, mac: '52:54:00:d0:00:03', vm: undefined },
  sv: { network: 'service', vlan: 1082, mac: '52:54:00:d0:00:04', vm: labUuid(0xd4) },
} as const;
type VmName = keyof typeof VMS;

const https = (domain: string, specialRanges: readonly string[] = TEST_NET) => ({
  domain,
  protocol: 'tcp',
  ports: 443,
  specialRanges,
});

describe.skipIf(!lab)('controlled DNS per VM: the DNS front in the real service (lab)', () => {
  const setup = new BackendLab<VmName>({
    vms: VMS,
    servers: [ALLOWED, OTHER, SHARED, WILD, TARGET, INTRANET].map((host) => `${host}:443`),
    routes: ['192.0.2.0/24'],
    records: [
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
    ],
  });
  const secure = findNetwork(setup.site, 'secure');
  const gw = secure.gateway;
  const ips = {} as Record<VmName, string>;
  const vm = setup.vm;
  const queries = async (pattern: RegExp) => (await setup.resolverQueries()).filter((line) => pattern.test(line));

  beforeAll(async () => {
    await setup.start();
    for (const name of ['a', 'b', 'sv'] as const) {
      ips[name] = await setup.register(name);
      const network = findNetwork(setup.site, VMS[name].network);
      await configure(vm[name], 'eth0', `${ips[name]}/${network.subnet.split('/')[1]}`, network.gateway);
    }
    await configure(vm.c, 'eth0', '192.168.200.200/17', gw);
    await setup.allow('a', [https('allowed.example'), https('shared.example'), https('*.wild.example')]);
    await setup.allow('b', [https('other.example'), https('shared.example')]);
  });

  afterAll(async () => {
    await setup.stop();
  });

  it('gives an unregistered VM no answer at all, and counts the drops', async () => {
    const before = await setup.counter('dropped_dns_unregistered');
    expect((await dig(vm.c, gw, 'allowed.example', 1)).status).toBe('timeout');
    expect((await dig(vm.c, gw, 'allowed.example', 1, 'A', { tcp: true })).status).toBe('timeout');
    expect(await setup.counter('dropped_dns_unregistered')).toBeGreaterThan(before);
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
    expect((await dig(setup.backend, RESOLVER, 'control.allowed.example', 2, 'TXT')).status).toBe('NOERROR');
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
    await setup.allow('a', [
      https('allowed.example'),
      https('shared.example'),
      https('*.wild.example'),
      https('alias.example'),
    ]);
    expect(await dig(vm.a, gw, 'alias.example')).toEqual({ status: 'NXDOMAIN', answers: [] });
    expect((await tcpProbe(vm.a, TARGET, 443)).outcome).toBe('timeout');
    await setup.allow('b', [
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
    await setup.allow('a', [https('intranet.corp.example')]);
    expect(await dig(vm.a, gw, 'intranet.corp.example')).toEqual({ status: 'NOERROR', answers: [] });
    expect((await tcpProbe(vm.a, INTRANET, 443)).outcome).toBe('timeout');
    expect((await setup.setElements('dns_p16')).filter((e) => e.includes(INTRANET))).toEqual([]);
    // The control: named, the same answer opens it.
    await setup.allow('a', [https('intranet.corp.example', ['10.9.0.0/16'])]);
    expect(await dig(vm.a, gw, 'intranet.corp.example')).toEqual({ status: 'NOERROR', answers: [INTRANET] });
    expect((await tcpProbe(vm.a, INTRANET, 443)).outcome).toBe('connected');
  });

  it('closes what an allow-list change no longer allows', async () => {
    // a lost allowed.example and shared.example in the last test: what their answers opened is gone.
    const elements = (await setup.setElements('dns_p16')).filter((e) => e.startsWith(VMS.a.mac));
    expect(elements.some((e) => e.includes(SHARED) || e.includes(ALLOWED))).toBe(false);
    expect((await tcpProbe(vm.a, SHARED, 443)).outcome).toBe('timeout');
  });

  it(`accepts the first packet right after each answer (${FIRST_PACKETS} names: 0 drops)`, async () => {
    await setup.allow('a', [
      { domain: '*.first.example', protocol: 'udp', ports: 9999, specialRanges: ['192.0.2.0/24'] },
    ]);
    await setup.internet.run('nft', ['-f', '-'], {
      input: [
        'table ip probe {',
        '  counter arrived { }',
        '  chain pre { type filter hook prerouting priority -300; policy accept; udp dport 9999 counter name arrived; }',
        '}',
        '',
      ].join('\n'),
    });
    const droppedBefore = await setup.counter('dropped_egress');
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
    const counted = await setup.internet.run('nft', ['list', 'counter', 'ip', 'probe', 'arrived']);
    expect(Number(/packets (\d+)/.exec(counted.stdout)?.[1])).toBe(FIRST_PACKETS);
    expect(await setup.counter('dropped_egress')).toBe(droppedBefore);
  });

  it('re-opens with the first answer after a service restart (the table was rebuilt empty)', async () => {
    await setup.allow('b', [https('other.example')]);
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
    const first = setup.services.at(-1);
    await first?.stop();
    await setup.startService();
    expect(await setup.setElements('dns_p16')).toEqual([]);
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('timeout');
    expect(await dig(vm.b, gw, 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    expect((await tcpProbe(vm.b, OTHER, 443)).outcome).toBe('connected');
  });

  it('leaves service VMs open DNS through dnsmasq, and counts the front results on /metrics', async () => {
    expect(await dig(vm.sv, '192.168.122.1', 'other.example')).toEqual({ status: 'NOERROR', answers: [OTHER] });
    expect(await dig(vm.sv, '192.168.122.1', 'secret.allowed.example', 2, 'TXT')).toMatchObject({ status: 'NOERROR' });
    const metrics = await (await fetch(`${API_URL}/metrics`)).text();
    expect(metrics).toMatch(/ticrypt_dns_queries_total\{network="secure",result="answered"\} [1-9]/);
    expect(metrics).toMatch(/ticrypt_dns_transactions_total [1-9]/);
  });
});
