/**
 * The host's observe-plan-execute loop: observe, plan, execute what is not
 * blocked, observe and plan again to confirm. For: `host plan|apply` (the CLI
 * only prints what it returns). May not: print, or take a blocked action.
 */
import { HostApplyError } from '../errors/host-apply-error.js';
import type { ProgramRunner } from '../exec/run.js';
import { DEFAULT_LIBVIRT_URI } from '../names.js';
import type { Site } from '../site/model.js';
import { describeAction } from './describe.js';
import { executeActions } from './execute.js';
import type { Action, PlanOptions } from './model.js';
import type { FlowSource } from './flows/observe.js';
import { observeHost } from './observe.js';
import { planHost } from './plan.js';

/** Where and how a host is planned and applied. */
export interface HostRunOptions extends PlanOptions {
  /** libvirt connection URI (default `qemu:///system`). */
  readonly uri?: string;
  readonly run?: ProgramRunner;
  /** Also plan port security's flows, asking the backend through this (hook.yaml's backend). */
  readonly flows?: FlowSource;
}

/** What `host apply` did, and what is left (blocked, or still differing). */
export interface ApplyResult {
  readonly applied: readonly Action[];
  readonly remaining: readonly Action[];
}

function observed(site: Site, options: HostRunOptions) {
  return observeHost(site, {
    virshUri: options.uri ?? DEFAULT_LIBVIRT_URI,
    ...(options.run === undefined ? {} : { run: options.run }),
    ...(options.flows === undefined ? {} : { flows: options.flows }),
  });
}

/**
 * What `host apply` would change on `host` now: observe, then plan.
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` when the host cannot be observed.
 */
export async function planHostNow(
  site: Site,
  host: string | undefined,
  options: HostRunOptions = {},
): Promise<Action[]> {
  return planHost(site, host, await observed(site, options), options);
}

/**
 * Bring `host` to the site's state: observe, plan, execute every action that
 * is not blocked (telling `onAction` before each), then observe and plan
 * again; a second pass when the first changed bridges or ports (the flows are
 * planned from them as they then are), then confirm.
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` (its program's kind) naming the action that failed.
 */
export async function applyHost(
  site: Site,
  host: string | undefined,
  options: HostRunOptions & { readonly onAction?: (action: Action) => void } = {},
): Promise<ApplyResult> {
  const applied: Action[] = [];
  const execute = (actions: readonly Action[]) =>
    executeActions(actions, {
      virshUri: options.uri ?? DEFAULT_LIBVIRT_URI,
      ...(options.run === undefined ? {} : { run: options.run }),
      onAction: (action) => {
        applied.push(action);
        options.onAction?.(action);
      },
    });
  await execute(await planHostNow(site, host, options));
  let remaining = await planHostNow(site, host, options);
  if (applied.length > 0 && remaining.some((a) => a.kind !== 'blocked')) {
    await execute(remaining);
    remaining = await planHostNow(site, host, options);
  }
  return { applied, remaining };
}

/**
 * The error of an apply that left something to do: every remaining action
 * blocked (the operator's to take), or the host still differing.
 *
 * @returns `undefined` when nothing remains.
 */
export function unconvergedError(result: ApplyResult): HostApplyError | undefined {
  if (result.remaining.length === 0) return undefined;
  const blocked = result.remaining.every((a) => a.kind === 'blocked');
  return new HostApplyError(
    blocked
      ? "Some changes are blocked; they are the operator's to make"
      : 'The host still differs from the site after applying',
    result.remaining.map(describeAction),
  );
}
