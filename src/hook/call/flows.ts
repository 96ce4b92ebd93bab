/**
 * Port security inside a hook call: at `start`, `restore`, `started` and
 * `reconnect` the NICs' ports are pinned with the address the registration
 * answer gave (looked at in parallel with the registration, pinned after it);
 * at `stopped` their flows are removed; at the network hook's `port-created`
 * (the port does not exist yet) a pin is asked of `host pin`. Every OVS call is
 * bounded by what is left of the run (at most 1 s each); a slow or absent OVS
 * is one log line, never a failed or hung VM start. May not: change the exit
 * code, write to stdout, or call libvirt.
 */
import { lightRunner } from '../../exec/light-run.js';
import type { Outcome } from '../agent/deliver.js';
import { describeNic } from '../agent/events.js';
import type { HookLog } from '../agent/log.js';
import type { ManagedNic } from '../agent/nics.js';
import { addPinWant } from '../agent/pin-wants.js';
import { readOvsdb } from '../../portsec/ovsdb.js';
import { observeForPin, pinNics, unpinNics, type PinContext, type PinNic, type PinResult } from '../../portsec/pin.js';

/** Longest single OVS call of a hook run. */
const OVS_CALL_MS = 1000;

/** Port-security work started with a hook run's delivery and finished after it. */
export interface FlowWork {
  /** Pin, unpin or ask for a pin, given the delivery's outcomes (the register answers' addresses); logs what happened. */
  finish(outcomes: readonly Outcome[], log: HookLog): Promise<void>;
}

function pinNic(managed: ManagedNic, outcome?: Outcome): PinNic {
  return {
    mac: managed.nic.mac,
    vmUuid: managed.nic.vmUuid,
    ...(managed.bridge === undefined ? {} : { bridge: managed.bridge }),
    ...(outcome?.result === 'delivered' && outcome.ip !== undefined ? { ip: outcome.ip } : {}),
    ...(outcome?.result === 'delivered' && outcome.gatewayMac !== undefined ? { gatewayMac: outcome.gatewayMac } : {}),
  };
}

/**
 * Start the port-security work of a hook run: for `pin` and `unpin`, look at
 * OVS now (in parallel with the registration); `finish` does the rest.
 *
 * @param deadline `Date.now()` by which every OVS call must have ended.
 */
export function startFlows(
  flows: 'pin' | 'check' | 'unpin' | 'want',
  nics: readonly ManagedNic[],
  options: { readonly deadline: number; readonly spoolDir: string; readonly cause: string },
): FlowWork {
  const left = () => Math.min(OVS_CALL_MS, options.deadline - Date.now());
  // Ports are read from ovsdb-server's socket (no process: ~15 ms less per run); flows go through ovs-ofctl.
  const context: PinContext = { run: lightRunner(left), timeoutMs: left, lookup: (ms) => readOvsdb(ms) };
  const outcomeOf = (outcomes: readonly Outcome[], managed: ManagedNic) =>
    outcomes.find((o) => o.event.nic.mac === managed.nic.mac && o.event.nic.network === managed.nic.network);
  if (flows === 'want') {
    return {
      async finish(outcomes, log) {
        for (const managed of nics) {
          try {
            addPinWant(options.spoolDir, {
              ...pinNic(managed, outcomeOf(outcomes, managed)),
              network: managed.nic.network,
              at: Date.now(),
            });
          } catch (error) {
            log.error(
              `${options.cause}: flows: ${describeNic(managed.nic)}: pin not asked for: ${(error as Error).message}`,
            );
          }
        }
      },
    };
  }
  // At start the ports are new: nothing to compare with, so no stamps are read (one ovs-ofctl call less).
  const state = observeForPin(
    context,
    nics.map((m) => pinNic(m)),
    { stamps: flows === 'check' },
  );
  return {
    async finish(outcomes, log) {
      const pins = nics.map((m) => pinNic(m, outcomeOf(outcomes, m)));
      const result: PinResult =
        flows === 'unpin' ? await unpinNics(context, await state, pins) : await pinNics(context, await state, pins);
      report(result, nics, flows === 'unpin' ? 'unpin' : 'pin', options.cause, log);
    },
  };
}

function report(
  result: PinResult,
  nics: readonly ManagedNic[],
  flows: 'pin' | 'unpin',
  cause: string,
  log: HookLog,
): void {
  if (result.error !== undefined) {
    log.error(
      `${cause}: flows: ${flows} of ${nics.length} NIC(s) not done: ${result.error}; ${flows === 'pin' ? 'their ports stay closed' : 'their flows stay'} until host reconcile`,
    );
    return;
  }
  for (const outcome of result.outcomes) {
    const managed = nics.find((m) => m.nic.mac === outcome.nic.mac);
    const what = `${cause}: flows: ${flows} ${managed === undefined ? outcome.nic.mac : describeNic(managed.nic)}: ${outcome.detail}`;
    switch (outcome.result) {
      case 'pinned':
      case 'unpinned':
      case 'kept':
        log.info(what);
        break;
      case 'absent':
        if (flows === 'pin') log.warn(`${what}; host reconcile pins it once it exists`);
        else log.info(what);
        break;
      case 'failed':
        log.error(`${what}; ${flows === 'pin' ? 'the port stays closed' : 'the flows stay'} until host reconcile`);
        break;
      case 'current':
      case 'unsecured':
        break;
    }
  }
}
