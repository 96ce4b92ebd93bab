/**
 * The flow sync: observe OVS and the flows of every port-secured bridge, ask
 * the backend, plan, install what is missing, stale or partial and remove
 * what nothing asks for, then observe and plan again to confirm. What
 * `host flows` runs (the unit started with ovs-vswitchd runs it), and
 * `host reconcile` after it converged the backend (the minute's timer).
 * May not: touch anything but our flows.
 */
import { HostApplyError } from '../../errors/host-apply-error.js';
import type { ProgramRunner } from '../../exec/run.js';
import { describeAction } from '../describe.js';
import { executeActions } from '../execute.js';
import type { Action, ObservedHost } from '../model.js';
import { observeOvs } from '../observe.js';
import { observeFlows, type FlowSource } from './observe.js';
import { planFlowsOfHost } from './plan.js';

/** What a flow sync did and what is left. */
export interface FlowSyncResult {
  /** The bridges looked at. */
  readonly bridges: readonly string[];
  readonly applied: readonly Action[];
  /** Left after the sync: blocked actions (the backend did not answer), or what did not converge. */
  readonly remaining: readonly Action[];
}

async function planNow(run: ProgramRunner, source: FlowSource): Promise<{ bridges: string[]; actions: Action[] }> {
  const ovs = await observeOvs(run);
  if (!ovs.ovsRunning) {
    return {
      bridges: [],
      actions: [
        {
          kind: 'blocked',
          subject: 'Open vSwitch',
          reason: 'ovs-vsctl cannot reach ovsdb-server',
          fix: 'start Open vSwitch; its start runs the flow sync (ticrypt-net-host-flows.service)',
        },
      ],
    };
  }
  const flows = await observeFlows(run, ovs.bridges, source);
  const observed: ObservedHost = { ...ovs, links: [], networks: [], networkManager: false, flows };
  return { bridges: flows.targets.map((t) => t.bridge), actions: planFlowsOfHost(observed) };
}

/**
 * Bring every port-secured bridge's flows to what OVS and the backend say
 * (with `dryRun`, only plan).
 *
 * @throws {OvsOfctlError} `E_HOST_COMMAND` when OVS refuses a dump or a bundle.
 */
export async function syncFlows(
  run: ProgramRunner,
  source: FlowSource,
  options: { readonly dryRun?: boolean; readonly onAction?: (action: Action) => void } = {},
): Promise<FlowSyncResult> {
  const first = await planNow(run, source);
  if (options.dryRun === true) return { bridges: first.bridges, applied: [], remaining: first.actions };
  const applied: Action[] = [];
  await executeActions(first.actions, {
    run,
    onAction: (action) => {
      applied.push(action);
      options.onAction?.(action);
    },
  });
  const after = applied.length === 0 ? first : await planNow(run, source);
  return { bridges: first.bridges, applied, remaining: after.actions };
}

/** The error of a sync that left something to do (`undefined` when nothing is left). */
export function flowSyncError(result: FlowSyncResult): HostApplyError | undefined {
  if (result.remaining.length === 0) return undefined;
  return new HostApplyError(
    result.remaining.every((a) => a.kind === 'blocked')
      ? 'Flows could not be synced'
      : 'The flows still differ after the sync',
    result.remaining.map(describeAction),
  );
}
