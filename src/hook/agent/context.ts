/**
 * The delivery context of the host agent's own commands (`host flush`,
 * `host reconcile`): this host's transport, spool and log, with a deadline.
 * Runs outside any hook call. May not: be used by the hook call (its bound
 * and log are the call's own).
 */
import type { HookConfig } from '../setup/config-types.js';
import type { DeliveryContext } from './deliver.js';
import { transportOf } from './environment.js';
import { hookLog } from './log.js';
import { Spool } from './spool.js';

/** Per-request time limit of the host's commands at least (a hook run's is shorter: it blocks a VM). */
const COMMAND_REQUEST_MS = 5000;

/**
 * A delivery context for a command that may take `timeoutMs`, logging to
 * `stderr` (and to syslog when the configuration says so).
 *
 * @throws {HookConfigError} `E_HOOK_CONFIG` when the token or CA file cannot be read.
 */
export async function agentContext(
  config: HookConfig,
  options: { readonly timeoutMs: number; readonly stderr: (line: string) => void },
): Promise<DeliveryContext> {
  return {
    transport: await transportOf(config),
    spool: new Spool(config.spoolDir),
    log: hookLog({ syslog: config.syslog, tag: 'ticrypt-net-host', stderr: options.stderr }),
    requestMs: Math.max(config.timeouts.requestMs, COMMAND_REQUEST_MS),
    deadline: Date.now() + options.timeoutMs,
  };
}
