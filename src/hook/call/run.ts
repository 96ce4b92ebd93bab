/**
 * One run of the hook inside libvirt's call: read the XML, pick the managed
 * NICs, take a generation, deliver or spool, and decide the exit code, within
 * the run's bound. May not: touch the process (streams, exit: `main.ts` does),
 * call libvirt, or write to stdout.
 */
import type { Transport } from '../agent/client.js';
import type { ConfigLoad } from './config-cache.js';
import type { HookConfig } from '../setup/config-types.js';
import { scanDomainXml, scanPortHookData, type HookDomain } from '../agent/domain-scan.js';
import { deliverEvents, EXIT_RESERVE_MS, type Outcome } from '../agent/deliver.js';
import { describeNic, type HookEvent } from '../agent/events.js';
import { nextGeneration } from '../agent/generation.js';
import { clearIncoming, isIncoming, noteIncoming } from '../agent/incoming.js';
import type { HookLog } from '../agent/log.js';
import { managedNics } from '../agent/nics.js';
import { startFlows } from './flows.js';
import { opsOf } from './ops.js';
import { Spool } from '../agent/spool.js';
import { trace } from './trace.js';

/** One call of the hook by libvirt. */
export interface HookCall {
  readonly kind: 'qemu' | 'network';
  /** libvirt's arguments: `NAME OP SUBOP EXTRA` (qemu) or `NAME OP SUBOP` (network), plus anything extra. */
  readonly args: readonly string[];
  /** Standard input (the domain XML, or `<hookData>`); read only when the op is acted on. */
  readonly stdin: () => Promise<string>;
}

/** What a hook run needs from outside; `main.ts` wires the real ones, tests their own. */
export interface HookEnvironment {
  loadConfig(): Promise<ConfigLoad>;
  /** Build the backend transport; may throw (unreadable CA or token file). */
  transport(config: HookConfig): Promise<Transport>;
  /** The log; `syslog` is decided once the configuration is known. */
  log(config: HookConfig | undefined): HookLog;
  /** When the run started (`Date.now()` scale): the bound counts from here, Node start included. */
  readonly startedAt: number;
  /** Filled in as the run goes, for a watchdog to save what is unsettled (see {@link rescueInflight}). */
  readonly inflight?: Inflight;
}

/** A run's events and which of them are settled (delivered, refused, spooled or failed). */
export interface Inflight {
  events?: readonly HookEvent[];
  spool?: Spool;
  mustNotSpool?: (event: HookEvent) => boolean;
  readonly settled: Set<HookEvent>;
}

/**
 * Save a run's unsettled events when its bound is reached: spool each (fsync),
 * or, for a registration that must not be spooled, report the VM refused.
 *
 * @returns the exit code, or `undefined` when the run has no events yet (it is
 * still doing local work: reading, parsing; that is never cut short, so a
 * starved machine delays an event rather than losing it).
 */
export function rescueInflight(inflight: Inflight, log: HookLog | undefined): number | undefined {
  const { events, spool } = inflight;
  if (!events || !spool) return undefined;
  let code: number = HOOK_EXIT.ok;
  for (const event of events) {
    if (inflight.settled.has(event)) continue;
    const what = `${event.cause}: ${event.op} ${describeNic(event.nic)} generation ${event.generation}`;
    if (inflight.mustNotSpool?.(event)) {
      code = HOOK_EXIT.refuse;
      log?.error(`${what}: bound reached; registration required and not done: refusing the VM`);
      continue;
    }
    try {
      spool.append(event);
      log?.warn(`${what}: bound reached: spooled for later delivery`);
    } catch (error) {
      log?.error(`${what}: bound reached and not spooled: ${(error as Error).message}`);
    }
  }
  return code;
}

/** Exit codes: 0 for everything libvirt should go on with; 1 only to refuse a VM whose registration is required. */
export const HOOK_EXIT = { ok: 0, refuse: 1 } as const;

/**
 * Run the hook once and return its exit code. Never throws, never writes to
 * stdout. Ops it does not act on return 0 at once; for the others it reads
 * the XML, picks the NICs on managed networks, and registers or deregisters
 * each (see {@link deliverEvents}: spooled when the backend cannot be
 * reached in time). A broken configuration or input is one clear log line
 * and exit 0, so VMs on unmanaged networks are never blocked.
 */
export async function runHook(call: HookCall, env: HookEnvironment): Promise<{ code: number; log?: HookLog }> {
  const [name = '', op = ''] = call.args;
  const action = Object.hasOwn(opsOf(call.kind), op) ? opsOf(call.kind)[op] : undefined;
  if (!action) return { code: HOOK_EXIT.ok };

  trace('run');
  const loaded = await env.loadConfig();
  trace('config');
  const log = env.log(loaded.config);
  const cause = `${call.kind} ${op}`;
  try {
    if (loaded.error !== undefined) {
      log.error(
        loaded.config
          ? `${loaded.error}; acting on the last valid configuration`
          : `${loaded.error}; acting on no NIC (${cause} of ${name})`,
      );
    }
    const config = loaded.config;
    if (!config) return { code: HOOK_EXIT.ok, log };
    if (call.args.length > 4) log.warn(`${cause} of ${name}: ignoring ${call.args.length - 4} extra argument(s)`);

    let domain: HookDomain;
    try {
      const text = await call.stdin();
      trace('stdin');
      domain = call.kind === 'qemu' ? scanDomainXml(text) : scanPortHookData(text, name);
    } catch (error) {
      log.error(`${cause} of ${name}: ${(error as Error).message}; acting on no NIC`);
      return { code: HOOK_EXIT.ok, log };
    }
    trace('xml');
    const { nics, problems } = managedNics(domain, config);
    let refuse = false;
    for (const problem of problems) {
      log.error(`${cause}: ${problem.message}`);
      if (action.action === 'register' && action.strict && problem.network.requireRegistration) refuse = true;
    }
    if (nics.length === 0) return { code: refuse ? HOOK_EXIT.refuse : HOOK_EXIT.ok, log };

    // Live migration: the destination's `migrate` notes the VM; its start, started and reconnect send the marker.
    const vmUuid = nics[0]?.nic.vmUuid ?? '';
    if (action.migration === 'begin') {
      try {
        noteIncoming(config.spoolDir, vmUuid);
      } catch (error) {
        log.error(
          `${cause} of ${name}: incoming migration not noted (${(error as Error).message}): its start registers without the migration marker`,
        );
      }
    }
    const incoming =
      action.migration === 'begin' || (action.migration === 'mark' && isIncoming(config.spoolDir, vmUuid));
    // With migration.requireBackend, an incoming migration the backend did not confirm is refused.
    const requireBackend = action.migration === 'begin' && config.migration?.requireBackend === true;

    const deadline = env.startedAt + config.timeouts.hookMs - EXIT_RESERVE_MS;
    // Port security: OVS is looked at while the registration is under way; the pin needs its answer.
    const flows =
      action.flows === undefined
        ? undefined
        : startFlows(action.flows, nics, { deadline, spoolDir: config.spoolDir, cause });

    let transport: Transport | undefined;
    let transportError: string | undefined;
    try {
      transport = await env.transport(config);
      transport.preconnect?.();
    } catch (error) {
      transportError = (error as Error).message;
    }
    trace('transport');
    const spool = new Spool(config.spoolDir);
    const generation = nextGeneration(config.spoolDir);
    trace('generation');
    const events: HookEvent[] = nics.map(({ nic }) => ({
      op: action.action,
      generation,
      nic,
      cause,
      ...(incoming && action.action === 'register' ? { migration: 'incoming' as const } : {}),
    }));
    const required = new Set(nics.filter((m) => m.network.requireRegistration).map((m) => m.nic));
    const mustNotSpool = (event: HookEvent) =>
      event.op === 'register' && ((action.strict && required.has(event.nic)) || requireBackend);
    const settled = env.inflight?.settled ?? new Set<HookEvent>();
    if (env.inflight) Object.assign(env.inflight, { events, spool, mustNotSpool });

    let outcomes: Outcome[];
    if (transport) {
      outcomes = await deliverEvents(
        {
          transport,
          spool,
          log,
          requestMs: config.timeouts.requestMs,
          deadline,
          onSettled: (event) => settled.add(event),
        },
        events,
        (event) => !mustNotSpool(event),
      );
      transport.close?.();
    } else {
      // No transport (unreadable token or CA file): spool what may be spooled.
      const reason = transportError ?? 'no transport';
      outcomes = events.map((event): Outcome => {
        settled.add(event);
        if (mustNotSpool(event)) return { event, result: 'failed', reason };
        try {
          spool.append(event);
          return { event, result: 'spooled', reason };
        } catch (spoolError) {
          return { event, result: 'failed', reason: `${reason}; ${(spoolError as Error).message}` };
        }
      });
    }
    trace('delivered');
    for (const outcome of outcomes) {
      report(log, outcome);
      if (outcome.result !== 'delivered' && mustNotSpool(outcome.event)) refuse = true;
    }
    if (refuse && action.migration === 'begin') {
      clearIncoming(config.spoolDir, vmUuid);
      log.error(
        `${cause} of ${name}: the backend did not confirm the incoming migration (migration.requireBackend): refusing it`,
      );
    } else if (refuse) log.error(`${cause} of ${name}: registration required and not done: refusing the VM`);
    // This host's QEMU of the VM is gone: a later start here is not an incoming migration.
    if (action.migration === 'end') clearIncoming(config.spoolDir, vmUuid);
    // A VM refused is not pinned: libvirt stops it (and the stopped hook unpins nothing).
    if (flows && !refuse) await flows.finish(outcomes, log);
    trace('flows');
    return { code: refuse ? HOOK_EXIT.refuse : HOOK_EXIT.ok, log };
  } catch (error) {
    log.error(`${cause} of ${name}: unexpected error: ${(error as Error).stack ?? String(error)}`);
    return { code: HOOK_EXIT.ok, log };
  }
}

/** What a migration status means, for the log line. */
const MIGRATION_NOTES: Readonly<Record<string, string>> = {
  incoming: " (live migration: the source keeps the NIC until its QEMU stops; pinned with the NIC's address)",
  moved: " (live migration: the NIC is its destination's now; nothing revoked, this host's flows removed)",
  withdrawn: ' (the live migration to this host did not complete: the source keeps the NIC)',
};

function report(log: HookLog, outcome: Outcome): void {
  const { event } = outcome;
  const what = `${event.cause}: ${event.op} ${describeNic(event.nic)} generation ${event.generation}`;
  switch (outcome.result) {
    case 'delivered':
      log.info(
        `${what}: ${outcome.status ?? 'ok'}${outcome.ip === undefined ? '' : ` ip=${outcome.ip}`}${MIGRATION_NOTES[outcome.status ?? ''] ?? ''}`,
      );
      return;
    case 'spooled':
      log.warn(`${what}: spooled for later delivery (${outcome.reason ?? ''})`);
      return;
    case 'refused':
      log.error(`${what}: ${outcome.reason ?? 'refused'}`);
      return;
    case 'failed':
      log.error(`${what}: not delivered: ${outcome.reason ?? ''}`);
  }
}
