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
import { linkCommands } from '../../exec/link-actions.js';
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
    case 'create-vlan-interface':
    case 'set-link-up':
    case 'set-link-mtu':
      return linkCommands(action);
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
