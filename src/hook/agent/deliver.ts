/**
 * Delivery of NIC events to the backend: one event at a time, in generation
 * order per NIC, bounded by the run's deadline; what cannot be delivered goes to
 * the spool, and the spool is flushed first. Runs inside a hook call and from
 * `host flush` and `host reconcile`. May not: decide which NICs or what
 * generation (the caller's), or call libvirt.
 */
import { join } from 'node:path';
import type { ApiPaths, DeregisterBody, ErrorAnswer, RegisterAnswer, RegisterBody } from '../../protocol/api.js';
import type { Answer, Transport } from './client.js';
import { describeNic, type HookEvent, nicKey } from './events.js';
import { lock } from './lock.js';
import type { HookLog } from './log.js';
import type { Spool, SpoolEntry } from './spool.js';

/** What became of one event. */
export interface Outcome {
  readonly event: HookEvent;
  /**
   * `delivered`: the backend confirmed it; `spooled`: stored for a later run;
   * `refused`: the backend refused it for good (MAC conflict, unknown network, invalid);
   * `failed`: not delivered and not spooled (registration required, or the spool failed).
   */
  readonly result: 'delivered' | 'spooled' | 'refused' | 'failed';
  /** The backend's status (`registered`, `removed`, `kept-other-host`, ...), when delivered. */
  readonly status?: string;
  /** The reserved address, for a delivered registration. */
  readonly ip?: string;
  /** The gateway's MAC, for a delivered registration (when the backend knows it). */
  readonly gatewayMac?: string;
  /** Why it was not delivered. */
  readonly reason?: string;
}

/** Refusals that will not change on retry: the event is reported (or set aside), not retried. */
const PERMANENT = new Set([400, 409, 413, 422]);

/** Time kept back from a run's deadline for spooling and exiting. */
export const EXIT_RESERVE_MS = 150;

/** What a delivery run needs. */
export interface DeliveryContext {
  readonly transport: Transport;
  readonly spool: Spool;
  readonly log: HookLog;
  /** Per-request time limit. */
  readonly requestMs: number;
  /** `Date.now()` by which every request must have ended. */
  readonly deadline: number;
  /** Told of each of {@link deliverEvents}' events once its outcome is settled. */
  readonly onSettled?: (event: HookEvent) => void;
}

type Attempt =
  | { kind: 'ok'; status?: string; ip?: string; gatewayMac?: string }
  | { kind: 'permanent'; reason: string }
  | { kind: 'transient'; reason: string; unreachable: boolean };

/** Send one event to the backend, bounded by the request limit and the run's deadline. */
export async function send(context: DeliveryContext, event: HookEvent): Promise<Attempt> {
  const left = context.deadline - Date.now();
  if (left <= 0) return { kind: 'transient', reason: 'no time left in this run', unreachable: true };
  const { nic, generation } = event;
  const request:
    { path: ApiPaths['register']; body: RegisterBody } | { path: ApiPaths['deregister']; body: DeregisterBody } =
    event.op === 'register'
      ? {
          path: '/v1/register',
          body: {
            vmUuid: nic.vmUuid,
            vmName: nic.vmName,
            mac: nic.mac,
            network: nic.network,
            generation,
            ...(event.migration === undefined ? {} : { migration: event.migration }),
          },
        }
      : { path: '/v1/deregister', body: { mac: nic.mac, network: nic.network, generation } };
  let answer: Answer;
  try {
    answer = await context.transport(request.path, request.body, Math.min(context.requestMs, left));
  } catch (error) {
    return { kind: 'transient', reason: `backend unreachable: ${(error as Error).message}`, unreachable: true };
  }
  // Read defensively: whatever answered may not be the API.
  const json = (answer.body ?? {}) as Partial<Record<keyof RegisterAnswer, unknown>> & Partial<ErrorAnswer>;
  if (answer.status >= 200 && answer.status < 300) {
    return {
      kind: 'ok',
      ...(typeof json.status === 'string' ? { status: json.status } : {}),
      ...(typeof json.ip === 'string' ? { ip: json.ip } : {}),
      ...(typeof json.gatewayMac === 'string' ? { gatewayMac: json.gatewayMac } : {}),
    };
  }
  const code = typeof json.error?.code === 'string' ? json.error.code : 'no error code';
  const message = typeof json.error?.message === 'string' ? json.error.message : 'no message';
  const reason = `backend refused ${event.op} (${answer.status} ${code}): ${message}`;
  return PERMANENT.has(answer.status)
    ? { kind: 'permanent', reason }
    : { kind: 'transient', reason, unreachable: false };
}

/** The result of one flush of the spool. */
export interface FlushResult {
  readonly delivered: number;
  readonly deadLettered: number;
  /** Entries still spooled afterwards. */
  readonly remaining: number;
  /** Whether another process held the flush lock until `lockDeadline`. */
  readonly busy: boolean;
  /** Whether the backend could not be reached (the flush stopped there). */
  readonly unreachable: boolean;
}

/**
 * Deliver spooled events in generation order, under the spool's flush lock
 * (so two runs never send one NIC's events out of order). A NIC whose event
 * fails keeps its later events spooled; an unreachable backend ends the
 * flush. Entries the backend refuses for good go to `failed/`.
 */
export async function flushSpool(context: DeliveryContext, lockDeadline = context.deadline): Promise<FlushResult> {
  const { spool, log } = context;
  spool.ensureDir();
  const release = await lock(join(spool.dir, 'flush.lock'), lockDeadline);
  if (!release)
    return { delivered: 0, deadLettered: 0, remaining: spool.list().length, busy: true, unreachable: false };
  try {
    let unreachable = false;
    let delivered = 0;
    let deadLettered = 0;
    const blocked = new Set<string>();
    const entries = spool.list();
    for (const entry of entries) {
      const key = nicKey(entry.event.nic);
      if (blocked.has(key)) continue;
      const attempt = await send(context, entry.event);
      if (attempt.kind === 'ok') {
        spool.remove(entry);
        delivered++;
        log.info(`${describe(entry)}: delivered from the spool (${attempt.status ?? 'ok'})`);
      } else if (attempt.kind === 'permanent') {
        spool.deadLetter(entry, attempt.reason);
        deadLettered++;
        log.error(`${describe(entry)}: ${attempt.reason}; set aside in ${spool.failed}`);
      } else {
        blocked.add(key);
        log.warn(`${describe(entry)}: still spooled: ${attempt.reason}`);
        if (attempt.unreachable) {
          unreachable = true;
          break;
        }
      }
    }
    return { delivered, deadLettered, remaining: spool.list().length, busy: false, unreachable };
  } finally {
    release();
  }
}

function describe(entry: SpoolEntry): string {
  return `${entry.event.op} ${describeNic(entry.event.nic)} generation ${entry.event.generation}`;
}

/**
 * Deliver a hook run's events: first whatever is spooled (in order), then
 * each event directly, unless its NIC still has spooled events, in which case
 * it joins them. Events that cannot be delivered are spooled (durably) when
 * `spoolOnFailure(event)` says so, and reported `failed` otherwise.
 */
export async function deliverEvents(
  context: DeliveryContext,
  events: readonly HookEvent[],
  spoolOnFailure: (event: HookEvent) => boolean,
): Promise<Outcome[]> {
  const { spool } = context;
  let pending = new Set<string>();
  let unreachable: string | undefined;
  if (!spool.isEmpty()) {
    // Wait for a concurrent flush only as long as still leaves time for this run's own requests.
    const flushed = await flushSpool(context, Math.max(Date.now(), context.deadline - context.requestMs));
    if (flushed.remaining > 0) pending = spool.pendingKeys();
    if (flushed.unreachable) unreachable = 'backend unreachable (spool flush failed)';
  }
  const park = (event: HookEvent, reason: string): Outcome => {
    if (!spoolOnFailure(event)) return { event, result: 'failed', reason };
    try {
      spool.append(event);
      return { event, result: 'spooled', reason };
    } catch (error) {
      return { event, result: 'failed', reason: `${reason}; ${(error as Error).message}` };
    }
  };
  const settle = (outcome: Outcome): Outcome => {
    context.onSettled?.(outcome.event);
    return outcome;
  };
  return Promise.all(events.map(async (event): Promise<Outcome> => settle(await deliverOne(event))));

  async function deliverOne(event: HookEvent): Promise<Outcome> {
    if (pending.has(nicKey(event.nic))) return park(event, 'earlier events of this NIC are still spooled');
    if (unreachable !== undefined) return park(event, unreachable);
    const attempt = await send(context, event);
    if (attempt.kind === 'ok') {
      return {
        event,
        result: 'delivered',
        ...(attempt.status === undefined ? {} : { status: attempt.status }),
        ...(attempt.ip === undefined ? {} : { ip: attempt.ip }),
        ...(attempt.gatewayMac === undefined ? {} : { gatewayMac: attempt.gatewayMac }),
      };
    }
    if (attempt.kind === 'permanent') return { event, result: 'refused', reason: attempt.reason };
    return park(event, attempt.reason);
  }
}
