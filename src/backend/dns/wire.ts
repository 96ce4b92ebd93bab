/**
 * DNS messages on the wire, through dns-packet: the few shapes the front
 * reads (a VM's query, an upstream answer) and writes (a reply, a query
 * upstream). Decoding throws on anything malformed (dns-packet's own
 * errors), encoding a reply throws `DnsAnswerError` when it cannot echo the
 * question; callers catch.
 */
import {
  decode,
  encode,
  RECURSION_AVAILABLE,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
  type Answer,
  type Packet,
  type Question,
} from 'dns-packet';
import { DnsAnswerError } from '../../errors/dns-answer-error.js';

/** The response codes the front uses. */
export const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** One of {@link RCODES}. */
export type Rcode = keyof typeof RCODES;

/** EDNS(0) Extended DNS Error (RFC 8914): its option code, and the info code "Blocked" (by the operator's policy). */
export const EDE = { option: 15, blocked: 15 } as const;

/** A record the front passes on: an address or an alias, with its TTL in seconds. */
export interface DnsRecord {
  /** Lower case, no trailing dot. */
  readonly name: string;
  readonly type: 'A' | 'CNAME';
  readonly ttl: number;
  /** A: the address; CNAME: the target name, lower case. */
  readonly data: string;
}

/** A VM's query as the front reads it. */
export interface DnsQuery {
  readonly id: number;
  /** The header's opcode (0: QUERY). */
  readonly opcode: number;
  /** Whether the message is a response (QR set): never answered. */
  readonly isResponse: boolean;
  readonly recursionDesired: boolean;
  /** Every question (a query has exactly one). */
  readonly questions: readonly Question[];
  /** The client's EDNS(0) UDP payload size, when it sent an OPT record. */
  readonly ednsSize: number | undefined;
}

/** An upstream resolver's answer as the front reads it. */
export interface UpstreamAnswer {
  readonly id: number;
  readonly isResponse: boolean;
  readonly truncated: boolean;
  readonly rcode: number;
  readonly question: Question | undefined;
  /** The A and CNAME records of the answer section (everything else is dropped). */
  readonly records: readonly DnsRecord[];
  /** The negative-caching TTL from the authority section's SOA (min of its TTL and MINIMUM), if any. */
  readonly negativeTtl: number | undefined;
}

const lower = (name: string) => name.toLowerCase().replace(/\.$/, '');

/** Decode a VM's query. @throws on a malformed message. */
export function decodeQuery(message: Buffer): DnsQuery {
  const packet = decode(message);
  const flags = message.readUInt16BE(2);
  const opt = (packet.additionals ?? []).find((a) => a.type === 'OPT');
  return {
    id: packet.id ?? 0,
    opcode: (flags >> 11) & 0xf,
    isResponse: (flags & 0x8000) !== 0,
    recursionDesired: (flags & RECURSION_DESIRED) !== 0,
    questions: packet.questions ?? [],
    ednsSize: opt?.type === 'OPT' ? opt.udpPayloadSize : undefined,
  };
}

/** Decode an upstream answer. @throws on a malformed message. */
export function decodeUpstream(message: Buffer): UpstreamAnswer {
  const packet = decode(message);
  const flags = message.readUInt16BE(2);
  const records: DnsRecord[] = [];
  for (const answer of packet.answers ?? []) {
    if ((answer.type === 'A' || answer.type === 'CNAME') && typeof answer.data === 'string') {
      records.push({ name: lower(answer.name), type: answer.type, ttl: answer.ttl ?? 0, data: lower(answer.data) });
    }
  }
  const soa = (packet.authorities ?? []).find((a) => a.type === 'SOA');
  const negativeTtl = soa?.type === 'SOA' ? Math.min(soa.ttl ?? 0, soa.data.minimum ?? soa.ttl ?? 0) : undefined;
  return {
    id: packet.id ?? 0,
    isResponse: (flags & 0x8000) !== 0,
    truncated: (flags & TRUNCATED_RESPONSE) !== 0,
    rcode: flags & 0xf,
    question: packet.questions?.[0],
    records,
    negativeTtl,
  };
}

/** A recursive query for `name`/`type` with a fresh `id`, EDNS(0) 1232 bytes, nothing of the VM's message in it. */
export function encodeQuery(id: number, name: string, type: 'A' | 'CNAME'): Buffer {
  return encode({
    type: 'query',
    id,
    flags: RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: [
      { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0 } as Answer,
    ],
  });
}

/** What the front answers a question with. */
export interface Reply {
  readonly rcode: Rcode;
  readonly records: readonly DnsRecord[];
  /** Set when policy refused the question: sent as an Extended DNS Error "Blocked" to EDNS clients. */
  readonly blocked?: string;
}

/**
 * The reply to `query`: its id and question, RD copied, RA set, the records,
 * and, for an EDNS client, an OPT record (with the EDE when blocked). When
 * it would exceed `maxSize` bytes (UDP), it is sent truncated (TC, no
 * records) so the client retries over TCP.
 */
export function encodeReply(query: DnsQuery, reply: Reply, maxSize = 65_535): Buffer {
  for (const question of query.questions) {
    if (!encodable(question.name)) throw new DnsAnswerError(question.name, 'the name cannot be written back as read');
  }
  const opt =
    query.ednsSize === undefined
      ? []
      : [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: 1232,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            options:
              reply.blocked === undefined ? [] : [{ code: EDE.option, data: edeData(EDE.blocked, reply.blocked) }],
          } as unknown as Answer,
        ];
  const packet = (records: readonly DnsRecord[], truncated: boolean): Packet => ({
    type: 'response',
    id: query.id,
    flags:
      (query.recursionDesired ? RECURSION_DESIRED : 0) |
      RECURSION_AVAILABLE |
      (truncated ? TRUNCATED_RESPONSE : 0) |
      RCODES[reply.rcode],
    questions: [...query.questions],
    answers: records.map((r) => ({ type: r.type, name: r.name, ttl: r.ttl, class: 'IN', data: r.data })),
    additionals: opt,
  });
  const full = encode(packet(reply.records, false));
  return full.length <= maxSize ? full : encode(packet([], true));
}

/**
 * Whether dns-packet writes `name` back as the name it read: it splits on
 * dots and writes each label's UTF-8 bytes, so a label that held a dot byte,
 * or bytes it read as replacement characters (longer in UTF-8), would come
 * out as another, possibly malformed, name.
 */
function encodable(name: string): boolean {
  if (name === '.') return true;
  const labels = name.replace(/\.$/, '').split('.');
  return (
    Buffer.byteLength(name) <= 254 &&
    labels.every((label) => label.length > 0 && Buffer.byteLength(label) <= 63 && !label.includes('\ufffd'))
  );
}

/**
 * A header-only reply (no question) built from the first 12 bytes of a
 * message dns-packet could not decode, or whose question cannot be echoed.
 * `undefined` when there is no header to answer (too short, or a response).
 */
export function headerReply(message: Buffer, rcode: Rcode): Buffer | undefined {
  if (message.length < 12 || (message.readUInt16BE(2) & 0x8000) !== 0) return undefined;
  const reply = Buffer.alloc(12);
  message.copy(reply, 0, 0, 2);
  const opcode = message.readUInt16BE(2) & 0x7800;
  const rd = message.readUInt16BE(2) & RECURSION_DESIRED;
  reply.writeUInt16BE(0x8000 | opcode | rd | RECURSION_AVAILABLE | RCODES[rcode], 2);
  return reply;
}

function edeData(infoCode: number, text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const data = Buffer.alloc(2 + body.length);
  data.writeUInt16BE(infoCode, 0);
  body.copy(data, 2);
  return data;
}
