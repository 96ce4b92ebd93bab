import { describe, expect, it } from 'vitest';
import {
  admittingEntry,
  flowRecord,
  isoMicros,
  parseRefusalPrefix,
  refusedRecord,
  type IdentitySource,
} from '../../../src/backend/audit/convert.js';
import { AuditRecord } from '../../../src/backend/audit/record.js';
import { admissionBits, decodeFlowMark } from '../../../src/backend/nft/marks.js';
import type { AllowEntry, Registration } from '../../../src/protocol/api.js';

const NIC: Registration = {
  hostId: 'kvm-1',
  vmUuid: '0b1d2c3e-0000-4000-8000-000000000001',
  vmName: 'vm-a',
  mac: '52:54:00:00:00:01',
  network: 'secure',
  ip: '192.168.128.10',
  generation: 1,
  nicId: 42,
};
const ENTRIES: AllowEntry[] = [
  { type: 'address', address: '203.0.113.0/24', protocol: 'tcp', ports: { from: 80, to: 90 } },
  { type: 'domain', domain: 'files.example', protocol: 'tcp', ports: { from: 443, to: 443 } },
];
const identity: IdentitySource = {
  byNicId: (id) => (id === 42 ? NIC : undefined),
  byMac: (network, mac) => (network === NIC.network && mac === NIC.mac ? NIC : undefined),
  entries: () => ENTRIES,
  audited: (network) => network === 'secure',
};

/** An NFCT end event as ulogd's JSON output writes it. */
const end = (mark: number, extra: Record<string, unknown> = {}) => ({
  'orig.ip.protocol': 6,
  'orig.l4.sport': 40000,
  'orig.l4.dport': 80,
  'orig.raw.pktlen': 1500,
  'orig.raw.pktcount': 10,
  'reply.l4.sport': 80,
  'reply.raw.pktlen': 9000,
  'reply.raw.pktcount': 8,
  'ct.mark': mark,
  'flow.start.sec': 1796118254,
  'flow.start.usec': 46808,
  'flow.end.sec': 1796118255,
  'flow.end.usec': 724691,
  src_ip: NIC.ip,
  dest_ip: '203.0.113.7',
  'reply.ip.saddr.str': '203.0.113.7',
  ...extra,
});

describe('audit records from ulogd lines', () => {
  it('writes times with microseconds, UTC', () => {
    expect(isoMicros(1796118254, 46808)).toBe('2026-12-01T09:44:14.046808Z');
  });

  it('formats each second right when seconds alternate (the last second is reused)', () => {
    for (const [sec, usec] of [
      [1796118254, 1],
      [1796118254, 999999],
      [1796118255, 0],
      [1796118254, 2],
      [0, 0],
    ] as const)
      expect(isoMicros(sec, usec)).toBe(
        `${new Date(sec * 1000).toISOString().slice(0, 19)}.${String(usec).padStart(6, '0')}Z`,
      );
  });

  it('round-trips the admission bits of ct mark', () => {
    expect(decodeFlowMark((admissionBits('dns') | 42) >>> 0)).toEqual({ nicId: 42, admission: 'dns' });
    expect(decodeFlowMark(42)).toEqual({ nicId: 42, admission: undefined });
  });

  it('turns an allowed flow into a record: identity, entry, bytes each way', () => {
    const converted = flowRecord(end((admissionBits('allow') | 42) >>> 0), identity);
    if (!('record' in converted)) throw new Error(JSON.stringify(converted));
    expect(AuditRecord.parse(converted.record)).toEqual({
      v: 1,
      kind: 'flow',
      vm: { uuid: NIC.vmUuid, name: 'vm-a', mac: NIC.mac, ip: NIC.ip, network: 'secure', host: 'kvm-1' },
      proto: 'tcp',
      src: { ip: NIC.ip, port: 40000 },
      dst: { ip: '203.0.113.7', port: 80 },
      start: '2026-12-01T09:44:14.046808Z',
      end: '2026-12-01T09:44:15.724691Z',
      bytes: { out: 1500, in: 9000 },
      packets: { out: 10, in: 8 },
      admittedBy: { kind: 'allow', entry: '203.0.113.0/24 tcp 80-90' },
    });
  });

  it('turns an SSH-forwarded flow around: the VM answers, so reply bytes are its out', () => {
    const line = end((admissionBits('ssh') | 42) >>> 0, {
      src_ip: '203.0.113.50',
      dest_ip: '203.0.113.1',
      'orig.l4.dport': 22100,
      'reply.ip.saddr.str': NIC.ip,
      'reply.l4.sport': 22,
    });
    const converted = flowRecord(line, identity);
    if (!('record' in converted)) throw new Error(JSON.stringify(converted));
    expect(converted.record).toMatchObject({
      src: { ip: '203.0.113.50' },
      dst: { ip: NIC.ip, port: 22 },
      bytes: { out: 9000, in: 1500 },
      admittedBy: { kind: 'ssh', entry: 'ssh port 22100' },
    });
  });

  it('skips flows without the audit bit, and says when fields are missing', () => {
    expect(flowRecord(end(42), identity)).toEqual({ skipped: 'not-audited' });
    expect(flowRecord({ 'ct.mark': admissionBits('allow') }, identity)).toEqual({ skipped: 'malformed' });
  });

  it('names the admitting entry: the address entry holding the destination, or the fitting domains', () => {
    expect(admittingEntry(ENTRIES, 'allow', '203.0.113.9', 'tcp', 85)).toBe('203.0.113.0/24 tcp 80-90');
    expect(admittingEntry(ENTRIES, 'allow', '203.0.113.9', 'udp', 85)).toBe('unknown');
    // No note from the DNS front (an answer from before the service started): the fitting entries, marked so.
    expect(admittingEntry(ENTRIES, 'dns', '198.51.100.1', 'tcp', 443)).toBe('unattributed: files.example tcp 443');
  });

  it('names, for a DNS flow, only the names whose answers opened its destination, through an entry that fits', () => {
    const a = { type: 'domain', domain: 'a.example', protocol: 'tcp', ports: { from: 443, to: 443 } } as const;
    const b = { type: 'domain', domain: 'b.example', protocol: 'tcp', ports: { from: 443, to: 443 } } as const;
    const wild = { type: 'domain', domain: '*.files.example', protocol: 'tcp', ports: { from: 80, to: 90 } } as const;
    const entries: AllowEntry[] = [a, b, wild];
    const dns = (admissions: { name: string; entries: (typeof a | typeof b | typeof wild)[] }[], port = 443) =>
      admittingEntry(entries, 'dns', '198.51.100.1', 'tcp', port, admissions);
    expect(dns([{ name: 'a.example', entries: [a] }])).toBe('a.example tcp 443');
    expect(dns([{ name: 'x.files.example', entries: [wild] }], 85)).toBe('x.files.example (*.files.example) tcp 80-90');
    // An answer whose entry does not fit the port did not admit this flow.
    expect(dns([{ name: 'x.files.example', entries: [wild] }])).toBe(
      'unattributed: a.example tcp 443|b.example tcp 443',
    );
    // Two names answered with the same address, both open at the flow's start: both named, the table cannot tell.
    expect(
      dns([
        { name: 'a.example', entries: [a] },
        { name: 'b.example', entries: [b] },
      ]),
    ).toBe('a.example tcp 443|b.example tcp 443');
  });

  it('asks the DNS front about a DNS flow at its start time, by NIC id and destination', () => {
    const asked: [number, string, number][] = [];
    const withDns: IdentitySource = {
      ...identity,
      entries: () => [
        { type: 'domain', domain: 'a.example', protocol: 'tcp' },
        { type: 'domain', domain: 'b.example', protocol: 'tcp' },
      ],
      dnsAdmissions: (nicId, address, atMs) => {
        asked.push([nicId, address, atMs]);
        return [{ name: 'a.example', entries: [{ type: 'domain', domain: 'a.example', protocol: 'tcp' }] }];
      },
    };
    const converted = flowRecord(end((admissionBits('dns') | 42) >>> 0), withDns);
    if (!('record' in converted)) throw new Error(JSON.stringify(converted));
    expect(converted.record.admittedBy).toEqual({ kind: 'dns', entry: 'a.example tcp' });
    expect(asked).toEqual([[42, '203.0.113.7', 1796118254 * 1000 + 46.808]]);
  });

  it('turns an NFLOG refusal into a refused record, identity by NIC id, or by MAC without one', () => {
    const line = {
      'oob.prefix': 'ticrypt-audit not-allowed secure',
      'oob.time.sec': 1796118255,
      'oob.time.usec': 176316,
      'oob.mark': 0x10000000 | 42,
      'ip.protocol': 6,
      src_ip: NIC.ip,
      dest_ip: '198.51.100.10',
      src_port: 48046,
      dest_port: 5002,
      'raw.pktlen': 60,
    };
    const converted = refusedRecord(line, identity);
    if (!('record' in converted)) throw new Error(JSON.stringify(converted));
    expect(AuditRecord.parse(converted.record)).toMatchObject({
      kind: 'refused',
      reason: 'not-allowed',
      vm: { uuid: NIC.vmUuid, network: 'secure' },
      dst: { ip: '198.51.100.10', port: 5002 },
      bytes: { out: 60, in: 0 },
    });
    const unregistered = refusedRecord(
      {
        ...line,
        'oob.prefix': 'ticrypt-audit unregistered secure',
        'oob.mark': 0,
        'mac.saddr.str': '52:54:00:00:00:99',
        src_ip: '192.168.200.1',
      },
      identity,
    );
    if (!('record' in unregistered)) throw new Error(JSON.stringify(unregistered));
    expect(unregistered.record.vm).toEqual({
      uuid: null,
      name: null,
      mac: '52:54:00:00:00:99',
      ip: '192.168.200.1',
      network: 'secure',
      host: null,
    });
    expect(refusedRecord({ ...line, 'oob.prefix': 'ticrypt egress drop' }, identity)).toEqual({
      skipped: 'not-audited',
    });
  });

  it.each([
    ['ticrypt-audit spoofed secure', { reason: 'spoofed', network: 'secure' }],
    ['ticrypt-audit cross-network service', { reason: 'cross-network', network: 'service' }],
    ['ticrypt-audit bogus secure', undefined],
    ['other', undefined],
  ])('reads the refusal prefix %j', (prefix, expected) => {
    expect(parseRefusalPrefix(prefix)).toEqual(expected);
  });
});
