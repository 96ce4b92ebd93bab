/**
 * Running planned actions: one program call (or a short fixed sequence) per
 * action, through ovs-vsctl, ip, nmcli and virsh, never a shell.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linkCommands } from '../exec/link-actions.js';
import { DEFAULT_LIBVIRT_URI } from '../names.js';
import { describeAction } from './describe.js';
import { MANAGED_KEY, MANAGED_VALUE, type Action } from './model.js';
import { programRunner, runChecked, type ProgramRunner } from '../exec/run.js';
import type { FlowAction } from '../portsec/plan.js';
import { policyExternalIds, type BridgePolicy } from '../portsec/policy.js';
import { executeFlowActions } from './flows/execute.js';

/** How to execute. */
export interface ExecuteOptions {
  readonly run?: ProgramRunner;
  /** libvirt connection URI (default `qemu:///system`). */
  readonly virshUri?: string;
  /** Told before each action runs. */
  readonly onAction?: (action: Action) => void;
}

const MARK = `external_ids:${MANAGED_KEY}=${MANAGED_VALUE}`;

export { nmConnectionName } from '../exec/link-actions.js';

/**
 * Execute the actions in order; `blocked` ones are skipped (they are the
 * operator's). Stops at the first failure.
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` naming the action that failed.
 */
export async function executeActions(actions: readonly Action[], options: ExecuteOptions = {}): Promise<void> {
  const run = options.run ?? programRunner();
  const uri = options.virshUri ?? DEFAULT_LIBVIRT_URI;
  const flows: FlowAction[] = [];
  for (const action of actions) {
    if (action.kind === 'blocked') continue;
    options.onAction?.(action);
    if (action.kind === 'install-flows' || action.kind === 'remove-flows') {
      // Flows come last in a plan; each bridge's go in one bundle.
      flows.push(action);
      continue;
    }
    const doing = `to ${describeAction(action)}`;
    for (const [program, ...args] of commandsFor(action, uri)) {
      await runChecked(run, doing, program, args);
    }
    if (action.kind === 'define-network') await defineNetwork(run, uri, action, doing);
  }
  await executeFlowActions(flows, run);
}

/** `fail_mode=secure` and the policy's external_ids, as `ovs-vsctl set bridge` arguments. */
function policyColumns(policy: BridgePolicy): string[] {
  return [
    'fail_mode=secure',
    ...Object.entries(policyExternalIds(policy)).map(([key, value]) => `external_ids:${key}=${value}`),
  ];
}

/**
 * The commands an action runs (define-network's are {@link defineNetwork}'s:
 * it needs a temporary file).
 */
export function commandsFor(action: Action, uri: string = DEFAULT_LIBVIRT_URI): [string, ...string[]][] {
  const vsctl = (...args: string[]): [string, ...string[]] => ['ovs-vsctl', '--timeout=10', ...args];
  switch (action.kind) {
    case 'create-vlan-interface':
    case 'set-link-up':
    case 'set-link-mtu':
      return linkCommands(action);
    case 'create-bridge':
      return [
        vsctl(
          ...['--may-exist', 'add-br', action.bridge],
          ...['--', 'set', 'bridge', action.bridge, `datapath_type=${action.datapathType}`, MARK],
          ...(action.policy === undefined ? [] : policyColumns(action.policy)),
        ),
      ];
    case 'set-bridge-policy':
      return [vsctl('set', 'bridge', action.bridge, ...policyColumns(action.policy))];
    case 'install-flows':
    case 'remove-flows':
      return [];
    case 'add-port': {
      const columns = [
        ...(action.tag === undefined ? [] : [`tag=${action.tag}`]),
        ...(action.trunks.length === 0 ? [] : [`trunks=${action.trunks.join(',')}`]),
      ];
      const patch =
        action.peer === undefined
          ? []
          : ['--', 'set', 'interface', action.port, 'type=patch', `options:peer=${action.peer}`];
      return [
        vsctl(
          ...['--may-exist', 'add-port', action.bridge, action.port, ...columns],
          ...['--', 'set', 'port', action.port, MARK],
          ...patch,
        ),
      ];
    }
    case 'set-port-vlan':
      return [
        vsctl(
          ...(action.tag === undefined
            ? ['clear', 'port', action.port, 'tag']
            : ['set', 'port', action.port, `tag=${action.tag}`]),
          '--',
          ...(action.trunks.length === 0
            ? ['clear', 'port', action.port, 'trunks']
            : ['set', 'port', action.port, `trunks=${action.trunks.join(',')}`]),
          ...['--', 'set', 'port', action.port, MARK],
        ),
      ];
    case 'remove-port':
      return [vsctl('--if-exists', 'del-port', action.bridge, action.port)];
    case 'define-network':
      return action.reason === 'missing'
        ? []
        : [
            ...(action.wasActive ? [['virsh', '-c', uri, 'net-destroy', action.network] as [string, ...string[]]] : []),
            ['virsh', '-c', uri, 'net-undefine', action.network],
          ];
    case 'start-network':
      return [['virsh', '-c', uri, 'net-start', action.network]];
    case 'autostart-network':
      return [['virsh', '-c', uri, 'net-autostart', action.network]];
    case 'blocked':
      return [];
  }
}

async function defineNetwork(
  run: ProgramRunner,
  uri: string,
  action: Extract<Action, { kind: 'define-network' }>,
  doing: string,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ticrypt-net-'));
  try {
    const file = join(dir, `${action.network}.xml`);
    await writeFile(file, action.xml);
    await runChecked(run, doing, 'virsh', ['-c', uri, 'net-define', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
