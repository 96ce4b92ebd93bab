/**
 * The host planner's flow part: the bridges' intents from what was observed
 * (OVS, each bridge's flows, the backend's view), then the flow planner.
 * Pure. For `planHost` and doctor. May not: observe or change anything.
 */
import { bridgeIntent, type BridgeIntent, type NetworkView } from '../../portsec/intent.js';
import { planFlows } from '../../portsec/plan.js';
import { policyOf } from '../../portsec/policy.js';
import type { Action, ObservedHost } from '../model.js';

const EMPTY_VIEW: NetworkView = { ips: new Map(), groups: [] };

/** The flow actions of a host (none when its flows were not observed); a blocked action when they cannot be planned. */
export function planFlowsOfHost(observed: ObservedHost): Action[] {
  const flows = observed.flows;
  if (flows === undefined || flows.targets.length === 0) return [];
  if ('error' in flows.view) {
    return [
      {
        kind: 'blocked',
        subject: 'flows',
        reason: `the backend could not be asked what the flows should be (${flows.view.error})`,
        fix: 'check that the backend answers (ticrypt-net doctor); the hook and host reconcile install flows once it does',
      },
    ];
  }
  const view = flows.view;
  const intents: BridgeIntent[] = [];
  const actions: Action[] = [];
  for (const target of flows.targets) {
    const bridge = observed.bridges.find((b) => b.name === target.bridge);
    const policy = bridge === undefined ? undefined : policyOf(bridge.externalIds);
    if (bridge === undefined || policy === undefined || typeof policy === 'string') continue;
    try {
      intents.push(bridgeIntent(bridge, policy, observed.ports, view.get(target.network) ?? EMPTY_VIEW));
    } catch (error) {
      actions.push({
        kind: 'blocked',
        subject: `flows ${target.bridge}`,
        reason: (error as Error).message,
        fix: `check what the backend holds for network ${target.network}`,
      });
    }
  }
  return [...actions, ...planFlows(intents, flows.bridges)];
}
