/**
 * Issue 16's refusal records, tested like an attacker, against the real
 * programs (the audit lab: `backend serve --audit` with Debian's ulogd2 in a
 * backend namespace): a hostile secure VM "a" sends traffic with a spoofed
 * source (another VM's address, an address outside its network), from a MAC
 * nobody registered, toward the service network, and a flood past the
 * refusal rate limit (50/s per network and reason, bursts of 100). Each time
 * the destination counts what arrives (a receiver's own log: nothing), a
 * counter of the test's own (table `inet <p>count`, ahead of the service's
 * table) counts what the attacker sent toward the backend, and the audit store
 * must hold one `refused` record per packet with the right reason and the
 * attacker's identity as far as the packet tells it (for an unregistered MAC:
 * only MAC and network), or for the flood, `refused` records plus the exact
 * `suppressed` count equal to that counter (and `ticrypt_audit_suppressed_total`
 * agreeing). Next to each, the same VM's allowed flow still works and is on
 * record. A last case checks a DNS-admitted flow names only the name whose
 * answer opened its destination. Conntrack close timeouts are 1 s (audit-lab.ts);
 * the allowed flows are ended with `conntrack -D` (the same end event, without
 * waiting for conntrack's garbage collector).
 *
 *     a (secure 1081) ──┐                         ┌ g1 ┐                       internet: receiver 198.51.100.10
 *     sv (service 1082) ┴─ OVS bridge <p>br ───────┴ g2 ┴ backend ── up ═══ eth0   udp 6001-6004, tcp 5001/5005
 *     receiver udp 6003                                                            resolver 198.51.100.53
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord, RefusedRecord } from '../../src/backend/audit/record.js';
import { AuditLab } from './audit-lab.js';
import { labUuid, RESOLVER } from './backend-lab.js';
import { runPrefix } from './names.js';
import { labAvailable, programsAvailable } from './prereq.js';
import { configure, dig, setMac } from './probes.js';
import { Receiver, sendUdp } from './receiver.js';

const available =
  labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'conntrack', 'ip', 'ethtool', 'socat', 'dig') &&
  programsAvailable('ulogd');

const SERVER = '198.51.100.10';
/** The lab's internet is TEST-NET-2, special-use: the DNS front withholds it unless an entry names the range. */
const TEST_NET_2 = '198.51.100.0/24';
const DNS_A = '198.51.100.21';
const DNS_B = '198.51.100.22';
/** The allowed flows: tcp SERVER:5001 (an address entry), tcp :5005 of a.example and b.example (DNS). */
const ALLOWED_PORT = 5001;
const DNS_PORT = 5005;
/** The refused destinations, one port per attack. */
const PORTS = { spoofed: 6001, unregistered: 6002, cross: 6003, flood: 6004 } as const;
const SV_IP = '192.168.122.50';
/** Another secure VM's address (b is registered, so the address is taken by a registered NIC). */
const VMS = {
  a: { network: 'secure', mac: '52:54:00:a1:e0:01', vm: labUuid(0xae1) },
  b: { network: 'secure', mac: '52:54:00:a1:e0:02', vm: labUuid(0xae2) },
  sv: { network: 'service', mac: '52:54:00:a1:e0:05', vm: undefined },
} as const;
type VmName = keyof typeof VMS;
const UNREGISTERED_MAC = '52:54:00:a1:e0:66';
const OUTSIDE = '10.99.0.5';
const COUNT_TABLE = 'refusal_count';
const FLOOD = 3000;

describe.skipIf(!available)(
  'refusal records of a hostile VM, next to its allowed flows (lab)',
  { timeout: 200_000 },
  () => {
    const p = runPrefix();
    let built: AuditLab<VmName> | undefined;
    let internetRx: Receiver | undefined;
    let serviceRx: Receiver | undefined;
    const ips = {} as Record<VmName, string>;

    const audit = (): AuditLab<VmName> => {
      if (built === undefined) throw new Error('the lab was not built');
      return built;
    };
    const lab = () => audit().lab;
    const rx = (which: Receiver | undefined): Receiver => {
      if (which === undefined) throw new Error('no receiver');
      return which;
    };

    /** Packets the test's own counter `name` saw (table inet COUNT_TABLE). */
    async function counted(name: string): Promise<number> {
      const { stdout } = await lab().backend.run('nft', ['list', 'counter', 'inet', COUNT_TABLE, name]);
      return Number(/packets (\d+)/.exec(stdout)?.[1]);
    }

    const refused = (all: AuditRecord[], port: number): RefusedRecord[] =>
      all.filter((r): r is RefusedRecord => r.kind === 'refused' && r.dst.port === port);

    /** Wait until the store holds `n` refused records to `port` (then 1 s more: no more may come). */
    async function refusedRecords(port: number, n: number): Promise<RefusedRecord[]> {
      await audit().waitFor(
        `${n} refused records to port ${port}`,
        (all) => (refused(all, port).length >= n ? true : undefined),
        30_000,
      );
      await sleep(1000);
      return refused(await audit().records(), port);
    }

    /**
     * The VM's allowed flow: a TCP exchange with the receiver on SERVER:5001 (answered: it echoes), then its
     * conntrack entry deleted so its end event comes now; the flow record it must leave.
     */
    async function allowedFlow(): Promise<void> {
      const before = rx(internetRx).at(`${SERVER}:${ALLOWED_PORT}`).length;
      const { stdout } = await execa('ip', [
        ...['netns', 'exec', lab().vm.a.name, 'sh', '-c'],
        `printf hello | socat -t 1 - TCP:${SERVER}:${ALLOWED_PORT},connect-timeout=3`,
      ]);
      // The receiver answers with the address it saw (the backend's uplink, masqueraded), then echoes.
      expect(stdout).toContain('hello');
      expect(rx(internetRx).at(`${SERVER}:${ALLOWED_PORT}`).length).toBe(before + 1);
      const toPort = (all: AuditRecord[]) => all.filter((r) => r.kind === 'flow' && r.dst.port === ALLOWED_PORT);
      const flowsBefore = toPort(await audit().records()).length;
      await endFlows(ALLOWED_PORT);
      const flow = await audit().waitFor('the allowed flow on record', (all) => {
        const flows = toPort(all);
        return flows.length > flowsBefore ? flows.at(-1) : undefined;
      });
      expect(flow).toMatchObject({
        kind: 'flow',
        vm: { uuid: VMS.a.vm, mac: VMS.a.mac, ip: ips.a, network: 'secure' },
        dst: { ip: SERVER, port: ALLOWED_PORT },
        admittedBy: { kind: 'allow', entry: `${SERVER} tcp ${ALLOWED_PORT}` },
      });
    }

    /** Delete the backend's conntrack entries of tcp flows to `port` (closed): their end events come at once. */
    async function endFlows(port: number): Promise<void> {
      await sleep(200);
      await lab()
        .backend.run('conntrack', ['-D', '-p', 'tcp', '--dport', String(port)])
        .catch(() => undefined);
    }

    /** The backend forgets the MACs it learned on the secure leg (the attacker's ARP claimed other addresses or MACs). */
    async function forgetNeighbours(): Promise<void> {
      await lab().backend.run('ip', ['neigh', 'flush', 'dev', lab().gatewayInterface('secure')]);
    }

    beforeAll(async () => {
      built = await AuditLab.create(p, {
        site: {
          backend: { upstreamDns: [RESOLVER] },
          networks: { secure: { preset: 'secure' }, service: { preset: 'service' } },
        },
        vms: VMS,
        internet: [`${SERVER}/24`, `${DNS_A}/24`, `${DNS_B}/24`, `${RESOLVER}/24`],
        resolver: ['local-ttl=300', `address=/a.example/${DNS_A}`, `address=/b.example/${DNS_B}`],
        tokens: { 'kvm-1': [], ops: ['--admin'], prometheus: ['--metrics'] },
      });
      const l = built.lab;
      await built.startService();
      ips.a = (await built.registerVm('a')).ip;
      ips.b = (await built.registerVm('b')).ip;
      await configure(l.vm.sv, 'eth0', `${SV_IP}/24`, l.network('service').gateway);
      await l.allow('a', [
        { address: SERVER, protocol: 'tcp', ports: ALLOWED_PORT },
        { domain: 'a.example', protocol: 'tcp', ports: DNS_PORT, specialRanges: [TEST_NET_2] },
        { domain: 'b.example', protocol: 'tcp', ports: DNS_PORT, specialRanges: [TEST_NET_2] },
      ]);
      internetRx = await Receiver.start(l.internet, [
        `tcp:${SERVER}:${ALLOWED_PORT}`,
        `tcp:${DNS_A}:${DNS_PORT}`,
        `tcp:${DNS_B}:${DNS_PORT}`,
        ...[PORTS.spoofed, PORTS.unregistered, PORTS.flood].map((port) => `udp:${SERVER}:${port}`),
      ]);
      serviceRx = await Receiver.start(l.vm.sv, [`udp:${SV_IP}:${PORTS.cross}`]);
      // What the attacker sends, counted ahead of table inet ticrypt: at prerouting before its source chains
      // (spoofed, unregistered), at forward before its filter (cross-network, the flood).
      const gateway = l.gatewayInterface('secure');
      const count = [
        `table inet ${COUNT_TABLE} {`,
        ...['spoofed_b', 'spoofed_outside', 'unregistered', 'cross', 'flood'].map((c) => `  counter ${c} {}`),
        '  chain count_pre { type filter hook prerouting priority raw; policy accept;',
        `    iifname "${gateway}" ip saddr ${ips.b} udp dport ${PORTS.spoofed} counter name spoofed_b`,
        `    iifname "${gateway}" ip saddr ${OUTSIDE} udp dport ${PORTS.spoofed} counter name spoofed_outside`,
        `    iifname "${gateway}" ether saddr ${UNREGISTERED_MAC} udp dport ${PORTS.unregistered} counter name unregistered`,
        '  }',
        '  chain count_forward { type filter hook forward priority filter - 10; policy accept;',
        `    iifname "${gateway}" ip saddr ${ips.a} udp dport ${PORTS.cross} counter name cross`,
        `    iifname "${gateway}" ip saddr ${ips.a} udp dport ${PORTS.flood} counter name flood`,
        '  }',
        '}',
      ].join('\n');
      await l.backend.run('nft', ['-f', '-'], { input: `${count}\n` });
    });

    afterAll(async () => {
      await internetRx?.stop();
      await serviceRx?.stop();
      await built?.lab.backend.run('nft', ['delete', 'table', 'inet', COUNT_TABLE]).catch(() => undefined);
      await built?.remove();
    });

    it('spoofed sources: nothing arrives, each packet is refused on record with the attacker VM, its allowed flow still works', async () => {
      const vm = lab().vm.a;
      // The attacker's kernel sends from addresses it was given: another VM's (b's) and one outside the network.
      await vm.run('ip', ['addr', 'add', `${ips.b}/32`, 'dev', 'eth0']);
      await vm.run('ip', ['addr', 'add', `${OUTSIDE}/32`, 'dev', 'eth0']);
      try {
        const sentB = await sendUdp(vm, `${ips.b}:40001`, `${SERVER}:${PORTS.spoofed}`, { count: 5, label: 'as-b' });
        const sentOut = await sendUdp(vm, `${OUTSIDE}:40002`, `${SERVER}:${PORTS.spoofed}`, { count: 5, label: 'out' });
        expect([sentB, sentOut]).toEqual([5, 5]);
      } finally {
        await vm.run('ip', ['addr', 'del', `${ips.b}/32`, 'dev', 'eth0']).catch(() => undefined);
        await vm.run('ip', ['addr', 'del', `${OUTSIDE}/32`, 'dev', 'eth0']).catch(() => undefined);
        await forgetNeighbours();
      }
      // Positive control: they left the attacker and reached the backend.
      expect(await counted('spoofed_b')).toBe(5);
      expect(await counted('spoofed_outside')).toBe(5);
      expect(rx(internetRx).at(`${SERVER}:${PORTS.spoofed}`)).toEqual([]);
      const records = await refusedRecords(PORTS.spoofed, 10);
      const attacker = { uuid: VMS.a.vm, name: 'vm-a', mac: VMS.a.mac, network: 'secure', host: 'kvm-1' };
      // Another VM's address on the attacker's MAC is no registered iface . MAC . IP: refused as unregistered,
      // the record naming the VM whose MAC sent it and the address it claimed.
      const asB = records.filter((r) => r.src.ip === ips.b);
      expect(asB).toHaveLength(5);
      for (const r of asB) expect(r).toMatchObject({ reason: 'unregistered', vm: { ...attacker, ip: ips.b } });
      const outside = records.filter((r) => r.src.ip === OUTSIDE);
      expect(outside).toHaveLength(5);
      for (const r of outside) expect(r).toMatchObject({ reason: 'spoofed', vm: { ...attacker, ip: OUTSIDE } });
      expect(records).toHaveLength(10);
      await allowedFlow();
    });

    it('an unregistered MAC: nothing arrives, each packet refused on record with only its MAC and network', async () => {
      const vm = lab().vm.a;
      await setMac(vm, 'eth0', UNREGISTERED_MAC);
      try {
        // The link's restart dropped the default route.
        await configure(vm, 'eth0', `${ips.a}/17`, lab().network('secure').gateway);
        expect(await sendUdp(vm, `${ips.a}:40003`, `${SERVER}:${PORTS.unregistered}`, { count: 5 })).toBe(5);
      } finally {
        await setMac(vm, 'eth0', VMS.a.mac);
        await configure(vm, 'eth0', `${ips.a}/17`, lab().network('secure').gateway);
        await forgetNeighbours();
      }
      expect(await counted('unregistered')).toBe(5);
      expect(rx(internetRx).at(`${SERVER}:${PORTS.unregistered}`)).toEqual([]);
      const records = await refusedRecords(PORTS.unregistered, 5);
      expect(records).toHaveLength(5);
      for (const r of records) {
        expect(r).toMatchObject({
          reason: 'unregistered',
          vm: { uuid: null, name: null, host: null, mac: UNREGISTERED_MAC, ip: ips.a, network: 'secure' },
          src: { ip: ips.a, port: 40003 },
          dst: { ip: SERVER, port: PORTS.unregistered },
        });
      }
      await allowedFlow();
    });

    it('toward the service network: nothing arrives, each packet refused on record as cross-network', async () => {
      // Positive control: the service VM's receiver is up and reachable on its network (from its gateway).
      const gateway = lab().network('service').gateway;
      expect(
        await sendUdp(lab().backend, `${gateway}:40004`, `${SV_IP}:${PORTS.cross}`, { count: 1, label: 'ctl' }),
      ).toBe(1);
      await sleep(300);
      expect(
        rx(serviceRx)
          .at(`${SV_IP}:${PORTS.cross}`)
          .map((a) => a.data?.split(' ')[0]),
      ).toEqual(['ctl']);
      const before = rx(serviceRx).arrivals.length;
      expect(await sendUdp(lab().vm.a, `${ips.a}:40005`, `${SV_IP}:${PORTS.cross}`, { count: 5, label: 'x' })).toBe(5);
      expect(await counted('cross')).toBe(5);
      await sleep(300);
      expect(rx(serviceRx).arrivals.slice(before)).toEqual([]);
      const records = await refusedRecords(PORTS.cross, 5);
      expect(records).toHaveLength(5);
      for (const r of records) {
        expect(r).toMatchObject({
          reason: 'cross-network',
          vm: { uuid: VMS.a.vm, name: 'vm-a', mac: VMS.a.mac, ip: ips.a, network: 'secure', host: 'kvm-1' },
          src: { ip: ips.a, port: 40005 },
          dst: { ip: SV_IP, port: PORTS.cross },
        });
      }
      await allowedFlow();
    });

    it('a flood past the rate limit: nothing arrives; refused records plus the exact suppressed count equal what was sent', async () => {
      const suppressedMetric = /ticrypt_audit_suppressed_total\{network="secure",reason="not-allowed"\} (\d+)/;
      const suppressedOf = (all: AuditRecord[]) =>
        all
          .filter((r) => r.kind === 'suppressed' && r.vm.network === 'secure' && r.reason === 'not-allowed')
          .reduce((sum, r) => sum + (r.kind === 'suppressed' ? r.count : 0), 0);
      const all0 = await audit().records();
      const [refused0, suppressed0, metric0] = [
        all0.filter((r) => r.kind === 'refused' && r.reason === 'not-allowed').length,
        suppressedOf(all0),
        await audit().metric(suppressedMetric),
      ];
      const sent = await sendUdp(lab().vm.a, `${ips.a}:40006`, `${SERVER}:${PORTS.flood}`, { count: FLOOD });
      const seen = await counted('flood');
      // Positive control: the flood left the VM and reached the backend's forward hook, far past 100 + 50/s.
      expect(sent).toBe(FLOOD);
      expect(seen).toBeGreaterThan(1000);
      expect(seen).toBeLessThanOrEqual(sent);
      // Wait for the service's next counter poll and the records (the limit logs a burst of 100, then 50/s).
      const settled = await audit().waitFor(
        'refused + suppressed = the flood',
        (all) => {
          const refusedNow = all.filter((r) => r.kind === 'refused' && r.reason === 'not-allowed').length - refused0;
          const suppressedNow = suppressedOf(all) - suppressed0;
          return refusedNow + suppressedNow >= seen ? { refusedNow, suppressedNow } : undefined;
        },
        30_000,
      );
      await sleep(2500); // two more polls: nothing more may come
      const all = await audit().records();
      const refusedNow = all.filter((r) => r.kind === 'refused' && r.reason === 'not-allowed').length - refused0;
      const suppressedNow = suppressedOf(all) - suppressed0;
      console.log(
        `flood: ${seen} refused packets: ${refusedNow} refused records, ${suppressedNow} suppressed (first settled at ${settled.refusedNow} + ${settled.suppressedNow})`,
      );
      expect(refusedNow + suppressedNow).toBe(seen);
      expect(refusedNow).toBeGreaterThanOrEqual(100);
      expect(suppressedNow).toBeGreaterThan(0);
      expect(refused(all, PORTS.flood)).toHaveLength(refusedNow);
      for (const r of refused(all, PORTS.flood)) expect(r.vm).toMatchObject({ uuid: VMS.a.vm, ip: ips.a });
      expect((await audit().metric(suppressedMetric)) - metric0).toBe(suppressedNow);
      expect(rx(internetRx).at(`${SERVER}:${PORTS.flood}`)).toEqual([]);
      for (const [how, value] of Object.entries(await audit().lost())) expect(value, `lost by ${how}`).toBe(0);
      await allowedFlow();
    });

    it('a DNS-admitted flow names the name whose answer opened its destination, not every domain entry', async () => {
      const gateway = lab().network('secure').gateway;
      // Both names resolved for the VM (both addresses open), then a connection to a.example's address only.
      expect((await dig(lab().vm.a, gateway, 'a.example')).answers).toEqual([DNS_A]);
      expect((await dig(lab().vm.a, gateway, 'b.example')).answers).toEqual([DNS_B]);
      const { stdout } = await execa('ip', [
        ...['netns', 'exec', lab().vm.a.name, 'sh', '-c'],
        `printf hello | socat -t 1 - TCP:${DNS_A}:${DNS_PORT},connect-timeout=3`,
      ]);
      expect(stdout).toContain('hello');
      await endFlows(DNS_PORT);
      const flow = await audit().waitFor('the DNS-admitted flow on record', (all) =>
        all.find((r) => r.kind === 'flow' && r.dst.port === DNS_PORT),
      );
      expect(flow).toMatchObject({
        vm: { uuid: VMS.a.vm, ip: ips.a },
        dst: { ip: DNS_A, port: DNS_PORT },
        admittedBy: { kind: 'dns', entry: `a.example tcp ${DNS_PORT}` },
      });
    });
  },
);
