/**
 * Gathering what the flow planner needs: which bridges carry which backend
 * network (hook.yaml's networks, matched to the bridges' policies), each such
 * bridge's flows of ours (one `ovs-ofctl dump-flows` of our cookies: stamps,
 * canary and flow counts), and the backend's view. May not: change anything.
 */
import { runChecked, type ProgramRunner } from '../../exec/run.js';
import { parseFlowDump, type FlowObservation } from '../../portsec/dump.js';
import type { NetworkView } from '../../portsec/intent.js';
import { dumpOursArgs } from '../../portsec/ovs.js';
import { policyOf } from '../../portsec/policy.js';
import type { FlowTarget, ObservedBridge, ObservedFlows } from '../model.js';

/** Time limit of one dump (a thousand pinned ports dump in about 0.15 s). */
const DUMP_MS = 30_000;

/** Where the flow planner's backend side comes from (the CLI builds it from hook.yaml). */
export interface FlowSource {
  /** hook.yaml's networks: the backend network's name and, when set, its bridge. */
  readonly networks: readonly { readonly name: string; readonly bridge?: string }[];
  /** What the backend says about these networks (addresses, gateway MAC, groups). */
  view(networks: readonly string[]): Promise<ReadonlyMap<string, NetworkView>>;
}

/**
 * The bridges whose flows are planned: for each of hook.yaml's networks, its
 * bridge (hook.yaml's, else the bridge whose policy names the network), when
 * that bridge exists and carries a port-security policy.
 */
export function flowTargets(networks: FlowSource['networks'], bridges: readonly ObservedBridge[]): FlowTarget[] {
  const targets: FlowTarget[] = [];
  for (const network of networks) {
    const bridge =
      network.bridge === undefined
        ? bridges.find((b) => {
            const policy = policyOf(b.externalIds);
            return typeof policy === 'object' && policy.network === network.name;
          })
        : bridges.find((b) => b.name === network.bridge);
    if (bridge === undefined || typeof policyOf(bridge.externalIds) !== 'object') continue;
    if (!targets.some((t) => t.bridge === bridge.name)) targets.push({ bridge: bridge.name, network: network.name });
  }
  return targets;
}

/**
 * Observe the flows of the target bridges and ask the backend (a backend that
 * does not answer is recorded, not thrown: the plan says so).
 *
 * @throws {OvsOfctlError} `E_HOST_COMMAND` when a bridge's flows cannot be dumped.
 */
export async function observeFlows(
  run: ProgramRunner,
  bridges: readonly ObservedBridge[],
  source: FlowSource,
): Promise<ObservedFlows> {
  const targets = flowTargets(source.networks, bridges);
  const dumps = new Map<string, FlowObservation>();
  for (const { bridge } of targets) {
    const text = await runChecked(run, `reading the flows of ${bridge}`, 'ovs-ofctl', dumpOursArgs(bridge, DUMP_MS));
    dumps.set(bridge, parseFlowDump(text, true));
  }
  if (targets.length === 0) return { targets, bridges: dumps, view: new Map() };
  let view: ObservedFlows['view'];
  try {
    view = await source.view([...new Set(targets.map((t) => t.network))]);
  } catch (error) {
    view = { error: (error as Error).message };
  }
  return { targets, bridges: dumps, view };
}
