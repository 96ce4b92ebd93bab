/**
 * The backend's observe-plan-execute loop: observe, plan, execute what is not
 * blocked, observe and plan again to confirm. For: `backend plan|apply` (the
 * CLI only prints what it returns). May not: print, or take a blocked action.
 */
import { readFile } from 'node:fs/promises';
import { BackendApplyError } from '../../errors/backend-apply-error.js';
import type { ProgramRunner } from '../../exec/run.js';
import { packageUnit } from '../../package-files.js';
import type { Site } from '../../site/model.js';
import { describeBackendAction } from './describe.js';
import { executeBackendActions } from './execute.js';
import type { BackendAction, BackendPlanOptions } from './model.js';
import { observeBackend } from './observe.js';
import { BACKEND_UNIT, planBackend } from './plan.js';

/** Where and how the backend is planned and applied. */
export interface BackendRunOptions extends BackendPlanOptions {
  readonly run?: ProgramRunner;
}

/** What `backend apply` did, and what is left (blocked, or still differing). */
export interface BackendApplyResult {
  readonly applied: readonly BackendAction[];
  readonly remaining: readonly BackendAction[];
}

/**
 * What `backend apply` would change now: observe, then plan (with the
 * package's unit file as the one to install).
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` when the backend cannot be observed.
 */
export async function planBackendNow(site: Site, options: BackendRunOptions = {}): Promise<BackendAction[]> {
  const observed = await observeBackend(site, options);
  return planBackend(site, observed, await withPackageUnit(options));
}

/** The options with `unitText` filled in from the package's `systemd/ticrypt-net-backend.service` (when not given). */
export async function withPackageUnit<T extends BackendPlanOptions>(options: T): Promise<T> {
  if (options.unitText !== undefined) return options;
  const unitText = await readFile(packageUnit(BACKEND_UNIT), 'utf8').catch(() => undefined);
  return unitText === undefined ? options : { ...options, unitText };
}

/**
 * Bring the backend to the site's state: observe, plan, execute every action
 * that is not blocked (telling `onAction` before each), then observe and plan again.
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` (its program's kind) naming the action that failed.
 */
export async function applyBackend(
  site: Site,
  options: BackendRunOptions & { readonly onAction?: (action: BackendAction) => void } = {},
): Promise<BackendApplyResult> {
  const applied: BackendAction[] = [];
  await executeBackendActions(await planBackendNow(site, options), {
    ...(options.run === undefined ? {} : { run: options.run }),
    ...(options.netns === undefined ? {} : { netns: options.netns }),
    onAction: (action) => {
      applied.push(action);
      options.onAction?.(action);
    },
  });
  return { applied, remaining: await planBackendNow(site, options) };
}

/**
 * The error of an apply that left something to do: every remaining action
 * blocked (the operator's to take), or the backend still differing.
 *
 * @returns `undefined` when nothing remains.
 */
export function backendUnconvergedError(result: BackendApplyResult): BackendApplyError | undefined {
  if (result.remaining.length === 0) return undefined;
  const blocked = result.remaining.every((a) => a.kind === 'blocked');
  return new BackendApplyError(
    blocked
      ? "Some changes are blocked; they are the operator's to make"
      : 'The backend still differs from the site after applying',
    result.remaining.map(describeBackendAction),
  );
}
