/**
 * The audit record: one JSON object per line, the contract between what
 * produces records (the flow reader, the refused-flow reader) and what stores
 * them (an {@link AuditSink}). Three kinds share one shape:
 *
 * - `flow`: a flow the table accepted for a NIC (its allow-list, DNS or an
 *   SSH forward), written when conntrack reports its end; `admittedBy` says
 *   which.
 * - `refused`: one refused packet (rate-limited, NFLOG), with `reason`; the
 *   VM's identity fields are `null` where the packet names no registered NIC.
 * - `suppressed`: how many refusals of one `reason` on one network the rate
 *   limit kept from being `refused` records, exact, between `start` and `end`
 *   (`count`); its `vm` carries only `network`.
 *
 * Times are ISO 8601 UTC with microseconds: `2026-12-01T09:40:45.123456Z`.
 * Directions are the VM's: `out` from the VM, `in` to it.
 */
import { z } from 'zod';

/** The record format version; a reader rejects other versions. */
export const AUDIT_RECORD_VERSION = 1;

/** An ISO 8601 UTC time with exactly six fraction digits (microseconds). */
export const IsoMicros = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/, 'expected an ISO time with microseconds, UTC');

/** Why a flow was refused. */
export const RefusalReason = z.enum(['not-allowed', 'unregistered', 'spoofed', 'cross-network']);
/** Why a flow was refused. */
export type RefusalReason = z.infer<typeof RefusalReason>;

/** What admitted a flow: an allow-list entry, a DNS answer, or an SSH forward. */
export const AdmissionKind = z.enum(['allow', 'dns', 'ssh']);
/** What admitted a flow. */
export type AdmissionKind = z.infer<typeof AdmissionKind>;

/** The VM a record is about, as the registry knew its NIC. */
export const AuditVm = z.object({
  uuid: z.string().nullable(),
  name: z.string().nullable(),
  mac: z.string().nullable(),
  ip: z.string().nullable(),
  network: z.string(),
  host: z.string().nullable(),
});
/** The VM a record is about. */
export type AuditVm = z.infer<typeof AuditVm>;

const Endpoint = z.object({ ip: z.string(), port: z.number().int().min(0).max(65535).nullable() });
const PerDirection = z.object({ out: z.number().int().nonnegative(), in: z.number().int().nonnegative() });

/**
 * The fields a flow and a refused packet share, in record order after `v`
 * and `kind`: the VM, protocol, endpoints, times, and bytes and packets each
 * way. A shape (not a schema), spread into each, so each record's keys keep
 * this order in its JSON.
 */
const TRAFFIC = {
  vm: AuditVm,
  /** `tcp`, `udp`, `icmp` or the protocol number as text. */
  proto: z.string(),
  src: Endpoint,
  dst: Endpoint,
  start: IsoMicros,
  end: IsoMicros,
  bytes: PerDirection,
  packets: PerDirection,
};

/** A flow the table accepted, on record at its end. */
export const FlowRecord = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('flow'),
  ...TRAFFIC,
  /** Which allow entry (its index and text), domain or SSH port admitted it. */
  admittedBy: z.object({ kind: AdmissionKind, entry: z.string() }),
});
/** A flow the table accepted. */
export type FlowRecord = z.infer<typeof FlowRecord>;

/** One refused packet (rate-limited). `start` = `end` = when it was refused. */
export const RefusedRecord = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('refused'),
  ...TRAFFIC,
  reason: RefusalReason,
});
/** One refused packet. */
export type RefusedRecord = z.infer<typeof RefusedRecord>;

/** How many refusals the rate limit suppressed, exact, in a window. */
export const SuppressedRecord = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('suppressed'),
  vm: TRAFFIC.vm,
  start: TRAFFIC.start,
  end: TRAFFIC.end,
  reason: RefusalReason,
  count: z.number().int().positive(),
});
/** Refusals the rate limit suppressed. */
export type SuppressedRecord = z.infer<typeof SuppressedRecord>;

/** Any audit record; `kind` tells which. */
export const AuditRecord = z.discriminatedUnion('kind', [FlowRecord, RefusedRecord, SuppressedRecord]);
/** Any audit record. */
export type AuditRecord = z.infer<typeof AuditRecord>;

/**
 * Where records go. `append` resolves once the records are durable (the
 * reader persists its resume offset only after that), in the order given.
 *
 * @example
 * await sink.append([record]);
 */
export interface AuditSink {
  append(records: AuditRecord[]): Promise<void>;
}
