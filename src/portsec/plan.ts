/**
 * The flow planner: a pure function from what each bridge should hold (its
 * {@link BridgeIntent}) and what it holds (its {@link FlowObservation}: the
 * canary, the stamps, and when dumped whole, each program's flow count) to
 * the programs to install and to remove, bridge first. Its actions are what
 * `host plan` shows, `host apply`, `host flows` and `host reconcile` do, and
 * doctor reports. May not: observe or change anything.
 */
import type { ProgramKind } from './cookie.js';
import { programKey, type FlowObservation, type ProgramKey } from './dump.js';
import type { BridgeIntent } from './intent.js';
import { programFlowCount, type FlowProgram, type ProgramRef } from './render.js';

/** Why a program is installed. */
export type InstallReason =
  /** Not there (for the bridge program: the canary is gone, e.g. ovs-vswitchd lost its flows). */
  | 'missing'
  /** There, but rendered from other inputs (its stamp's digest differs). */
  | 'stale'
  /** Its stamp is right but flows are missing (deleted by hand, or replaced by another port's same flow). */
  | 'partial';

/** Why a program is removed. */
export type RemoveReason = 'port gone' | 'group gone';

/** What the flow planner asks for. */
export type FlowAction =
  | {
      readonly kind: 'install-flows';
      readonly bridge: string;
      /** `bridge`, `group 5 (lab)`, `port vnet3 (ofport 7, 52:54:00:12:34:56)`. */
      readonly label: string;
      readonly reason: InstallReason;
      readonly program: FlowProgram;
    }
  | {
      readonly kind: 'remove-flows';
      readonly bridge: string;
      readonly label: string;
      readonly reason: RemoveReason;
      readonly ref: ProgramRef;
    };

function parseKey(key: ProgramKey): ProgramRef {
  const [kind, ident] = key.split(':') as [ProgramKind, string];
  return { kind, ident: Number(ident) };
}

/**
 * Plan the flows of the given bridges: install what is missing, stale or
 * partial; remove our programs nothing asks for (a port that is gone, a group
 * with no member left here). A bridge without an observation is planned as
 * empty. Order: per bridge, its bridge program, then groups', then ports';
 * removals last.
 *
 * @example planFlows([intent], new Map([['br-secure', { canary: false, stamps: new Map() }]]))
 */
export function planFlows(
  intents: readonly BridgeIntent[],
  observations: ReadonlyMap<string, FlowObservation>,
): FlowAction[] {
  const actions: FlowAction[] = [];
  for (const intent of intents) {
    const observed: FlowObservation = observations.get(intent.bridge) ?? { canary: false, stamps: new Map() };
    const wanted = new Set<ProgramKey>();
    for (const { label, program } of intent.programs) {
      const key = programKey(program.kind, program.ident);
      wanted.add(key);
      const stamp = observed.stamps.get(key);
      const count = observed.counts?.get(key);
      let reason: InstallReason | undefined;
      if (stamp === undefined || (program.kind === 'bridge' && !observed.canary)) reason = 'missing';
      else if (stamp !== program.digest) reason = 'stale';
      else if (count !== undefined && count < programFlowCount(program)) reason = 'partial';
      if (reason !== undefined) actions.push({ kind: 'install-flows', bridge: intent.bridge, label, reason, program });
    }
    const present = new Set<ProgramKey>([...observed.stamps.keys(), ...(observed.counts?.keys() ?? [])]);
    for (const key of [...present].sort()) {
      if (wanted.has(key)) continue;
      const ref = parseKey(key);
      if (ref.kind === 'bridge') continue;
      actions.push({
        kind: 'remove-flows',
        bridge: intent.bridge,
        label: ref.kind === 'port' ? `port with ofport ${ref.ident}` : `group ${ref.ident}`,
        reason: ref.kind === 'port' ? 'port gone' : 'group gone',
        ref,
      });
    }
  }
  return actions;
}

/** One line for a flow action, as `host plan` prints it. */
export function describeFlowAction(action: FlowAction): string {
  if (action.kind === 'remove-flows') return `remove flows ${action.bridge} ${action.label}: ${action.reason}`;
  // `port vnet3 (ofport 7, ...)` reads as `install port flows BRIDGE vnet3 (ofport 7, ...)`.
  const [what = '', ...rest] = action.label.split(' ');
  return `install ${what} flows ${action.bridge}${rest.length === 0 ? '' : ` ${rest.join(' ')}`}: ${action.reason}`;
}
