/**
 * Words for the backend planner's actions: one line each for
 * `backend plan|apply`, and the subject each acts on (what doctor reports it
 * under). Pure. May not: decide anything about an action.
 */
import { describeLinkAction } from '../../exec/link-actions.js';
import type { BackendAction } from './model.js';

/**
 * One line saying what an action does.
 *
 * @example describeBackendAction({ kind: 'set-link-up', interface: 'bond0.1081' }) === 'set interface bond0.1081 up'
 */
export function describeBackendAction(action: BackendAction): string {
  switch (action.kind) {
    case 'create-vlan-interface':
    case 'set-link-up':
    case 'set-link-mtu':
      return describeLinkAction(action);
    case 'add-address':
      return `add address ${action.address} to ${action.interface}`;
    case 'remove-address':
      return `remove address ${action.address} from ${action.interface} (${action.reason})`;
    case 'set-sysctl':
      return `set ${action.key} = ${action.value}${action.was === undefined ? '' : ` (was ${action.was})`}`;
    case 'write-file':
      return `${action.reason === 'missing' ? 'write' : 'rewrite'} ${action.path} (${action.what})`;
    case 'reload-systemd':
      return 'reload systemd (systemctl daemon-reload)';
    case 'enable-unit':
      return `enable ${action.unit}`;
    case 'blocked':
      return `BLOCKED ${action.subject}: ${action.reason}. Instead: ${action.fix}`;
  }
}

/**
 * What an action acts on: `interface bond0.1081`, `sysctl net/ipv4/ip_forward`,
 * `file /etc/sysctl.d/60-ticrypt-net.conf`, `unit ticrypt-net-backend.service`,
 * or a blocked action's subject.
 */
export function backendActionSubject(action: BackendAction): string {
  switch (action.kind) {
    case 'create-vlan-interface':
    case 'set-link-up':
    case 'set-link-mtu':
    case 'add-address':
    case 'remove-address':
      return `interface ${action.interface}`;
    case 'set-sysctl':
      return `sysctl ${action.key}`;
    case 'write-file':
      return `file ${action.path}`;
    case 'reload-systemd':
      return 'systemd';
    case 'enable-unit':
      return `unit ${action.unit}`;
    case 'blocked':
      return action.subject;
  }
}
