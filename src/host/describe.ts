/**
 * Words for the planner's actions: one line each for `host plan|apply`, and
 * the subject each acts on (what doctor reports it under). Pure. May not:
 * decide anything about an action.
 */
import { describeLinkAction } from '../exec/link-actions.js';
import { describeFlowAction } from '../portsec/plan.js';
import { POLICY_KEYS } from '../portsec/policy.js';
import type { Action } from './model.js';

/**
 * One line saying what an action does, for `host plan` and `host apply`.
 *
 * @example describeAction({ kind: 'start-network', network: 'secure' }) === 'start network secure'
 */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'create-vlan-interface':
    case 'set-link-up':
    case 'set-link-mtu':
      return describeLinkAction(action);
    case 'create-bridge':
      return `create bridge ${action.bridge} (datapath_type=${action.datapathType}${action.policy === undefined ? '' : `, fail_mode=secure, port security peers=${action.policy.peers} ipv6=${action.policy.ipv6}`})`;
    case 'set-bridge-policy':
      return `set bridge ${action.bridge} port security (fail_mode=secure, ${POLICY_KEYS.peers}=${action.policy.peers}, ...): ${action.differences.join('; ')}`;
    case 'install-flows':
    case 'remove-flows':
      return describeFlowAction(action);
    case 'add-port':
      return `add port ${action.port} to bridge ${action.bridge}${vlanText(action.tag, action.trunks)}${action.peer === undefined ? '' : ` (patch, peer ${action.peer})`}`;
    case 'set-port-vlan':
      return `set port ${action.port}${vlanText(action.tag, action.trunks)} (was${vlanText(action.was.tag, action.was.trunks) || ' untagged'})`;
    case 'remove-port':
      return `remove port ${action.port} from bridge ${action.bridge} (${action.reason})`;
    case 'define-network':
      return action.reason === 'missing'
        ? `define network ${action.network}`
        : `redefine network ${action.network}${action.wasActive ? ' (stopped, undefined, defined again)' : ' (undefined, defined again)'}: ${action.differences.join('; ')}`;
    case 'start-network':
      return `start network ${action.network}`;
    case 'autostart-network':
      return `autostart network ${action.network}`;
    case 'blocked':
      return `BLOCKED ${action.subject}: ${action.reason}. Instead: ${action.fix}`;
  }
}

function vlanText(tag: number | undefined, trunks: readonly number[]): string {
  const parts: string[] = [];
  if (tag !== undefined) parts.push(` tag=${tag}`);
  if (trunks.length > 0) parts.push(` trunks=${trunks.join(',')}`);
  return parts.join('');
}

/**
 * What an action acts on, as blocked actions name it: `interface bond0.1081`,
 * `bridge br-secure`, `port bond0.1081`, `network secure` or `Open vSwitch`.
 *
 * @example actionSubject({ kind: 'create-bridge', bridge: 'br-secure', datapathType: 'system' }) === 'bridge br-secure'
 */
export function actionSubject(action: Action): string {
  switch (action.kind) {
    case 'create-vlan-interface':
    case 'set-link-up':
    case 'set-link-mtu':
      return `interface ${action.interface}`;
    case 'create-bridge':
    case 'set-bridge-policy':
      return `bridge ${action.bridge}`;
    case 'install-flows':
    case 'remove-flows':
      return `flows ${action.bridge}`;
    case 'add-port':
    case 'set-port-vlan':
    case 'remove-port':
      return `port ${action.port}`;
    case 'define-network':
    case 'start-network':
    case 'autostart-network':
      return `network ${action.network}`;
    case 'blocked':
      return action.subject;
  }
}
