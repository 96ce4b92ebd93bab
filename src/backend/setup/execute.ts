/**
 * Running the backend planner's actions: one program call (or a short fixed
 * sequence) per action through ip, nmcli, sysctl and systemctl, never a
 * shell, in the backend's namespace when one is given; files written whole
 * and renamed into place.
 *
 * May not: decide what to do (`./plan.ts` does), or take a blocked action.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { programRunner, runChecked, type ProgramRunner } from '../../exec/run.js';
import { NM_CONNECTION_PREFIX } from '../../names.js';
import { describeBackendAction } from './describe.js';
import type { BackendAction } from './model.js';

/** How to execute. */
export interface BackendExecuteOptions {
  /** Runs the programs (default: the real ones, in `netns` when given). */
  readonly run?: ProgramRunner;
  readonly netns?: string;
  /** Told before each action runs. */
  readonly onAction?: (action: BackendAction) => void;
}

/**
 * Execute the actions in order; `blocked` ones are skipped (they are the
 * operator's). Stops at the first failure.
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` (`IpError`, `NmcliError`, `SysctlError`, `SystemctlError`) naming the action that failed.
 */
export async function executeBackendActions(
  actions: readonly BackendAction[],
  options: BackendExecuteOptions = {},
): Promise<void> {
  const run = options.run ?? programRunner(options.netns === undefined ? {} : { netns: options.netns });
  for (const action of actions) {
    if (action.kind === 'blocked') continue;
    options.onAction?.(action);
    const doing = `to ${describeBackendAction(action)}`;
    if (action.kind === 'write-file') {
      await writeWhole(action.path, action.text, action.mode);
      continue;
    }
    for (const [program, ...args] of backendCommandsFor(action)) await runChecked(run, doing, program, args);
  }
}

/** The commands an action runs (a `write-file` runs none: it is written directly). */
export function backendCommandsFor(action: BackendAction): [string, ...string[]][] {
  switch (action.kind) {
    case 'create-vlan-interface': {
      const mtu = action.mtu === undefined ? [] : ['mtu', String(action.mtu)];
      if (action.method === 'nmcli') {
        const name = `${NM_CONNECTION_PREFIX}${action.interface}`;
        return [
          [
            'nmcli',
            ...['connection', 'add', 'type', 'vlan', 'con-name', name, 'ifname', action.interface],
            ...['dev', action.parent, 'id', String(action.vlan), ...mtu],
            ...['ipv4.method', 'manual', 'ipv4.addresses', action.address, 'ipv6.method', 'disabled'],
            ...['connection.autoconnect', 'yes'],
          ],
          ['nmcli', 'connection', 'up', name],
        ];
      }
      return [
        [
          'ip',
          'link',
          'add',
          'link',
          action.parent,
          'name',
          action.interface,
          'type',
          'vlan',
          'id',
          String(action.vlan),
          ...mtu,
        ],
      ];
    }
    case 'set-link-up':
      return [['ip', 'link', 'set', 'dev', action.interface, 'up']];
    case 'set-link-mtu':
      return [['ip', 'link', 'set', 'dev', action.interface, 'mtu', String(action.mtu)]];
    case 'add-address':
      return [['ip', 'addr', 'add', action.address, 'brd', '+', 'dev', action.interface]];
    case 'remove-address':
      return [['ip', 'addr', 'del', action.address, 'dev', action.interface]];
    case 'set-sysctl':
      return [['sysctl', '-q', '-w', `${action.key}=${action.value}`]];
    case 'reload-systemd':
      return [['systemctl', 'daemon-reload']];
    case 'enable-unit':
      return [['systemctl', 'enable', action.unit]];
    case 'write-file':
    case 'blocked':
      return [];
  }
}

async function writeWhole(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}
