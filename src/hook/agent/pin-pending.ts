/**
 * `host pin`: pin the ports the network hook asked for (`pin-wants.ts`), each
 * once it exists, waiting up to a bound; run by `ticrypt-net-host-pin.path`
 * when the hook leaves an entry, and by `host reconcile`. Never inside a hook
 * call (it waits). May not: call the backend (the entry holds its answer; the
 * sync adds what it lacks).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProgramRunner } from '../../exec/run.js';
import { observeForPin, pinNics, type PinOutcome } from '../../portsec/pin.js';
import type { HookLog } from './log.js';
import { listPinWants, removePinWant } from './pin-wants.js';

/** An entry whose port has not come in this long is dropped (the NIC never got one). */
const GIVE_UP_MS = 60 * 60 * 1000;

/** What a `host pin` run did. */
export interface PinPendingResult {
  readonly pinned: number;
  /** Still waiting for their ports (or OVS). */
  readonly waiting: number;
  readonly dropped: number;
}

/**
 * Pin every pending NIC whose port exists; wait (polling every 250 ms) up to
 * `waitMs` for the others.
 */
export async function pinPending(
  spoolDir: string,
  run: ProgramRunner,
  options: { readonly waitMs: number; readonly log: HookLog },
): Promise<PinPendingResult> {
  const deadline = Date.now() + options.waitMs;
  let pinned = 0;
  let dropped = 0;
  for (;;) {
    const entries = listPinWants(spoolDir);
    if (entries.length === 0) return { pinned, waiting: 0, dropped };
    const wants = entries.map((e) => e.want);
    const context = { run, timeoutMs: () => 10_000 };
    const result = await pinNics(context, await observeForPin(context, wants), wants);
    const outcomeOf = (mac: string): PinOutcome | undefined => result.outcomes.find((o) => o.nic.mac === mac);
    let waiting = 0;
    for (const { file, want } of entries) {
      const outcome = outcomeOf(want.mac);
      const what = `pin vm-id=${want.vmUuid} mac=${want.mac} network=${want.network}`;
      if (outcome !== undefined && outcome.result !== 'absent' && outcome.result !== 'failed') {
        removePinWant(file);
        if (outcome.result === 'pinned' || outcome.result === 'kept') pinned++;
        if (outcome.result !== 'current' && outcome.result !== 'unsecured')
          options.log.info(`${what}: ${outcome.detail}`);
      } else if (Date.now() - want.at > GIVE_UP_MS) {
        removePinWant(file);
        dropped++;
        options.log.warn(`${what}: no port came within an hour; dropped`);
      } else {
        waiting++;
        if (Date.now() >= deadline) {
          options.log.warn(`${what}: ${result.error ?? outcome?.detail ?? 'not pinned yet'}; still waiting`);
        }
      }
    }
    if (waiting === 0 || Date.now() >= deadline) return { pinned, waiting, dropped };
    await sleep(250);
  }
}
