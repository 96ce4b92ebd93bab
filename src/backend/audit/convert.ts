/**
 * ulogd's JSON lines (NFCT end events, NFLOG refusals) to audit records,
 * with each VM's identity from the registry. Pure: the registry is read
 * through {@link IdentitySource}.
 */
import ipaddr from 'ipaddr.js';
import type { AllowEntry, Registration } from '../../protocol/api.js';
import type { DnsAdmission } from '../dns/attribution.js';
import { decodeFlowMark, NIC_ID_MASK } from '../nft/marks.js';
import { REFUSAL_PREFIX } from '../nft/audit.js';
import { AUDIT_RECORD_VERSION, RefusalReason, type AuditVm, type FlowRecord, type RefusedRecord } from './record.js';

/** How the converter finds a NIC: by id (flows), by network and MAC (refusals without an id), its VM's allow-list. */
export interface IdentitySource {
  byNicId(id: number): Registration | undefined;
  byMac(network: string, mac: string): Registration | undefined;
  entries(vmUuid: string): readonly AllowEntry[];
  /** The network a NIC id belonged to, when the registration is gone (for records of late flow ends). */
  audited(network: string): boolean;
  /** The names whose DNS answers held `address` open for NIC `nicId` at `atMs` (see `DnsAttribution`). */
  dnsAdmissions?(nicId: number, address: string, atMs: number): readonly DnsAdmission[];
}

/** One parsed ulogd JSON line: field names as ulogd writes them (`orig.raw.pktlen`, `oob.prefix`, ...). */
export type UlogdLine = Readonly<Record<string, unknown>>;

/** What a line became: a record, or why not (`skipped`: not an audited flow; `malformed`: fields missing). */
export type Converted<R> = { record: R } | { skipped: 'not-audited' | 'malformed' };

const PROTOCOLS: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

/** `tcp`, `udp`, `icmp`, or the protocol number as text. */
export function protocolName(number: number): string {
  return PROTOCOLS[number] ?? String(number);
}

/** The last second {@link isoMicros} formatted, and its text: a flow's start and end, and a batch's flows, mostly share it. */
let lastSecond = { sec: Number.NaN, text: '' };

/** Seconds and microseconds since the epoch as `2026-12-01T09:40:45.123456Z`. */
export function isoMicros(sec: number, usec: number): string {
  if (sec !== lastSecond.sec) lastSecond = { sec, text: new Date(sec * 1000).toISOString().slice(0, 19) };
  return `${lastSecond.text}.${String(Math.trunc(usec)).padStart(6, '0')}Z`;
}

function num(line: UlogdLine, key: string): number | undefined {
  const value = line[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function str(line: UlogdLine, key: string): string | undefined {
  const value = line[key];
  return typeof value === 'string' ? value : undefined;
}

function vmOf(registration: Registration | undefined, network: string, mac?: string, ip?: string): AuditVm {
  if (registration === undefined)
    return { uuid: null, name: null, mac: mac ?? null, ip: ip ?? null, network, host: null };
  return {
    uuid: registration.vmUuid,
    name: registration.vmName,
    mac: registration.mac,
    ip: registration.ip,
    network: registration.network,
    host: registration.hostId,
  };
}

function inEntry(entry: AllowEntry, proto: string, port: number | null): boolean {
  if (entry.protocol !== 'any' && entry.protocol !== proto) return false;
  if (entry.ports === undefined || port === null) return true;
  return entry.ports.from <= port && port <= entry.ports.to;
}

function entryText(entry: AllowEntry): string {
  const target = entry.type === 'address' ? entry.address : entry.domain;
  const ports =
    entry.ports === undefined
      ? ''
      : entry.ports.from === entry.ports.to
        ? ` ${entry.ports.from}`
        : ` ${entry.ports.from}-${entry.ports.to}`;
  return `${target} ${entry.protocol}${ports}`;
}

function contains(cidr: string, ip: string): boolean {
  try {
    const address = ipaddr.IPv4.parse(ip);
    if (!cidr.includes('/')) return cidr === ip;
    return address.match(ipaddr.IPv4.parseCIDR(cidr));
  } catch {
    return false;
  }
}

/** An entry's ` <protocol>[ <ports>]`, as {@link entryText} ends. */
function portsText(entry: AllowEntry): string {
  return entryText(entry).slice((entry.type === 'address' ? entry.address : entry.domain).length);
}

/**
 * Which allow entry admitted a flow: the first address entry that holds its
 * destination (`203.0.113.0/24 tcp 80-90`). For DNS, the names whose answers
 * to this VM held the destination open when the flow started, through an
 * entry its protocol and port fit (`admissions`, from the DNS front):
 * `a.example tcp 443`, or `x.files.example (*.files.example) tcp 443` for a
 * wildcard entry; several, joined by `|`, when answers for several names
 * named the same address (the table cannot tell which the VM used). Without
 * such a note (an answer given before the service started, or forgotten), the
 * domain entries its protocol and port fit, marked `unattributed: `.
 */
export function admittingEntry(
  entries: readonly AllowEntry[],
  kind: 'allow' | 'dns',
  dst: string,
  proto: string,
  port: number | null,
  admissions: readonly DnsAdmission[] = [],
): string {
  if (kind === 'allow') {
    const hit = entries.find((e) => e.type === 'address' && contains(e.address, dst) && inEntry(e, proto, port));
    return hit === undefined ? 'unknown' : entryText(hit);
  }
  const named = new Set<string>();
  for (const { name, entries: opening } of admissions) {
    for (const entry of opening) {
      if (!inEntry(entry, proto, port)) continue;
      named.add(`${name}${entry.domain === name ? '' : ` (${entry.domain})`}${portsText(entry)}`);
    }
  }
  if (named.size > 0) return [...named].join('|');
  const domains = entries.filter((e) => e.type === 'domain' && inEntry(e, proto, port)).map(entryText);
  return domains.length === 0 ? 'unknown' : `unattributed: ${domains.join('|')}`;
}

/**
 * An NFCT end event as a flow record; `skipped` for flows without the audit
 * bit or of a network that keeps counts only.
 */
export function flowRecord(line: UlogdLine, identity: IdentitySource): Converted<FlowRecord> {
  const mark = num(line, 'ct.mark');
  if (mark === undefined) return { skipped: 'malformed' };
  const { nicId, admission } = decodeFlowMark(mark);
  if (admission === undefined) return { skipped: 'not-audited' };
  const protoNumber = num(line, 'orig.ip.protocol');
  const origSrc = str(line, 'src_ip');
  const origDst = str(line, 'dest_ip');
  const startSec = num(line, 'flow.start.sec');
  const endSec = num(line, 'flow.end.sec');
  if (
    protoNumber === undefined ||
    origSrc === undefined ||
    origDst === undefined ||
    startSec === undefined ||
    endSec === undefined
  ) {
    return { skipped: 'malformed' };
  }
  const registration = identity.byNicId(nicId);
  if (registration !== undefined && !identity.audited(registration.network)) return { skipped: 'not-audited' };
  const proto = protocolName(protoNumber);
  const sport = num(line, 'orig.l4.sport') ?? null;
  const dport = num(line, 'orig.l4.dport') ?? null;
  const orig = { bytes: num(line, 'orig.raw.pktlen') ?? 0, packets: num(line, 'orig.raw.pktcount') ?? 0 };
  const reply = { bytes: num(line, 'reply.raw.pktlen') ?? 0, packets: num(line, 'reply.raw.pktcount') ?? 0 };
  const times = {
    start: isoMicros(startSec, num(line, 'flow.start.usec') ?? 0),
    end: isoMicros(endSec, num(line, 'flow.end.usec') ?? 0),
  };
  const vm = vmOf(registration, registration?.network ?? 'unknown');
  // An SSH flow: the client opened it to a backend port and the NAT sent it to the VM's port 22, so the VM
  // answers (reply = out). Any other: the VM opened it (orig = out), admitted by one of its entries.
  const ssh = admission === 'ssh';
  const [out, back] = ssh ? [reply, orig] : [orig, reply];
  const dst = ssh
    ? { ip: str(line, 'reply.ip.saddr.str') ?? vm.ip ?? origDst, port: num(line, 'reply.l4.sport') ?? 22 }
    : { ip: origDst, port: dport };
  const entry = ssh
    ? `ssh port ${dport ?? 'unknown'}`
    : admittingEntry(
        registration === undefined ? [] : identity.entries(registration.vmUuid),
        admission,
        origDst,
        proto,
        dport,
        admission === 'dns'
          ? (identity.dnsAdmissions?.(nicId, origDst, startSec * 1000 + (num(line, 'flow.start.usec') ?? 0) / 1000) ??
              [])
          : [],
      );
  return {
    record: {
      v: AUDIT_RECORD_VERSION,
      kind: 'flow',
      vm,
      proto,
      src: { ip: origSrc, port: sport },
      dst,
      ...times,
      bytes: { out: out.bytes, in: back.bytes },
      packets: { out: out.packets, in: back.packets },
      admittedBy: { kind: admission, entry },
    },
  };
}

/** An NFLOG line's prefix read back: `ticrypt-audit <reason> <network>`. */
export function parseRefusalPrefix(prefix: string): { reason: RefusalReason; network: string } | undefined {
  const [tag, reason, network] = prefix.trim().split(' ');
  if (tag !== REFUSAL_PREFIX || network === undefined) return undefined;
  const parsed = RefusalReason.safeParse(reason);
  return parsed.success ? { reason: parsed.data, network } : undefined;
}

/** An NFLOG refusal as a refused record; `skipped` for packets of other NFLOG users. */
export function refusedRecord(line: UlogdLine, identity: IdentitySource): Converted<RefusedRecord> {
  const refusal = parseRefusalPrefix(str(line, 'oob.prefix') ?? '');
  if (refusal === undefined) return { skipped: 'not-audited' };
  const sec = num(line, 'oob.time.sec');
  const src = str(line, 'src_ip');
  const dst = str(line, 'dest_ip');
  const protoNumber = num(line, 'ip.protocol');
  if (sec === undefined || src === undefined || dst === undefined || protoNumber === undefined)
    return { skipped: 'malformed' };
  const mac = str(line, 'mac.saddr.str')?.toLowerCase();
  const nicId = (num(line, 'oob.mark') ?? 0) & NIC_ID_MASK;
  const registration =
    (nicId === 0 ? undefined : identity.byNicId(nicId)) ??
    (mac === undefined ? undefined : identity.byMac(refusal.network, mac));
  const at = isoMicros(sec, num(line, 'oob.time.usec') ?? 0);
  const length = num(line, 'raw.pktlen') ?? num(line, 'ip.totlen') ?? 0;
  return {
    record: {
      v: AUDIT_RECORD_VERSION,
      kind: 'refused',
      // Unregistered and spoofed packets name no NIC: what the packet said, not what the registry holds.
      vm:
        refusal.reason === 'unregistered' || refusal.reason === 'spoofed'
          ? { ...vmOf(registration, refusal.network, mac, src), mac: mac ?? null, ip: src }
          : vmOf(registration, refusal.network, mac, src),
      proto: protocolName(protoNumber),
      src: { ip: src, port: num(line, 'src_port') ?? null },
      dst: { ip: dst, port: num(line, 'dest_port') ?? null },
      start: at,
      end: at,
      bytes: { out: length, in: 0 },
      packets: { out: 1, in: 0 },
      reason: refusal.reason,
    },
  };
}
