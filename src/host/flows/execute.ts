/**
 * Running the flow planner's actions: one `ovs-ofctl --bundle` transaction per
 * bridge (each program replaced atomically by its exact cookie, removals by
 * theirs), bridge program first. For `host apply`, `host flows` and
 * `host reconcile`. May not: decide what to install (the planner did).
 */
import { runChecked, type ProgramRunner } from '../../exec/run.js';
import type { FlowAction } from '../../portsec/plan.js';
import { bundleArgs } from '../../portsec/ovs.js';
import { bundleText } from '../../portsec/render.js';

/** Time limit of one bundle (a thousand programs take well under a second). */
const BUNDLE_MS = 30_000;

/**
 * Apply flow actions, one bundle per bridge, in the order given within each bridge.
 *
 * @throws {OvsOfctlError} `E_HOST_COMMAND` naming the bridge whose bundle failed (nothing of that bundle is applied).
 */
export async function executeFlowActions(actions: readonly FlowAction[], run: ProgramRunner): Promise<void> {
  const byBridge = new Map<string, FlowAction[]>();
  for (const action of actions) byBridge.set(action.bridge, [...(byBridge.get(action.bridge) ?? []), action]);
  for (const [bridge, list] of byBridge) {
    const text = bundleText(list.map((a) => (a.kind === 'install-flows' ? { install: a.program } : { remove: a.ref })));
    await runChecked(
      run,
      `applying ${list.length} flow change(s) to ${bridge}`,
      'ovs-ofctl',
      bundleArgs(bridge, BUNDLE_MS),
      {
        input: text,
      },
    );
  }
}
