import { parseDomainXml, type DomainInfo } from '../libvirt/domain-nics.js';
import type { Transport } from './client.js';
import type { ConfigLoad } from './config-cache.js';
import type { HookConfig } from './config-types.js';
import { deliverEvents, EXIT_RESERVE_MS, type Outcome } from './deliver.js';
import { describeNic, type HookEvent } from './events.js';
import { nextGeneration } from './generation.js';
import type { HookLog } from './log.js';
import { managedNics } from './nics.js';
import { opsOf } from './ops.js';
import { parsePortHookData } from './port-xml.js';
import { Spool } from './spool.js';

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

  const loaded = await env.loadConfig();
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

    let domain: DomainInfo;
    try {
      const text = await call.stdin();
      domain = call.kind === 'qemu' ? parseDomainXml(text) : parsePortHookData(text, name);
    } catch (error) {
      log.error(`${cause} of ${name}: ${(error as Error).message}; acting on no NIC`);
      return { code: HOOK_EXIT.ok, log };
    }
    const { nics, problems } = managedNics(domain, config);
    let refuse = false;
    for (const problem of problems) {
      log.error(`${cause}: ${problem.message}`);
      if (action.action === 'register' && action.strict && problem.network.requireRegistration) refuse = true;
    }
    if (nics.length === 0) return { code: refuse ? HOOK_EXIT.refuse : HOOK_EXIT.ok, log };

    const spool = new Spool(config.spoolDir);
    const generation = nextGeneration(config.spoolDir);
    const events: HookEvent[] = nics.map(({ nic }) => ({ op: action.action, generation, nic, cause }));
    const required = new Set(nics.filter((m) => m.network.requireRegistration).map((m) => m.nic));
    const mustNotSpool = (event: HookEvent) => action.strict && event.op === 'register' && required.has(event.nic);

    let outcomes: Outcome[];
    try {
      const transport = await env.transport(config);
      outcomes = await deliverEvents(
        {
          transport,
          spool,
          log,
          requestMs: config.timeouts.requestMs,
          deadline: env.startedAt + config.timeouts.hookMs - EXIT_RESERVE_MS,
        },
        events,
        (event) => !mustNotSpool(event),
      );
    } catch (error) {
      // No transport (unreadable token or CA file): spool what may be spooled.
      const reason = (error as Error).message;
      outcomes = events.map((event): Outcome => {
        if (mustNotSpool(event)) return { event, result: 'failed', reason };
        try {
          spool.append(event);
          return { event, result: 'spooled', reason };
        } catch (spoolError) {
          return { event, result: 'failed', reason: `${reason}; ${(spoolError as Error).message}` };
        }
      });
    }
    for (const outcome of outcomes) {
      report(log, outcome);
      if (outcome.result !== 'delivered' && mustNotSpool(outcome.event)) refuse = true;
    }
    if (refuse) log.error(`${cause} of ${name}: registration required and not done: refusing the VM`);
    return { code: refuse ? HOOK_EXIT.refuse : HOOK_EXIT.ok, log };
  } catch (error) {
    log.error(`${cause} of ${name}: unexpected error: ${(error as Error).stack ?? String(error)}`);
    return { code: HOOK_EXIT.ok, log };
  }
}

function report(log: HookLog, outcome: Outcome): void {
  const { event } = outcome;
  const what = `${event.cause}: ${event.op} ${describeNic(event.nic)} generation ${event.generation}`;
  switch (outcome.result) {
    case 'delivered':
      log.info(`${what}: ${outcome.status ?? 'ok'}${outcome.ip === undefined ? '' : ` ip=${outcome.ip}`}`);
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
