/**
 * The Open vSwitch commands of port security, as argument lists, and the
 * reading of their answers: one `ovs-vsctl` call that lists every bridge,
 * port and interface (with OpenFlow port numbers and the bridges' policies),
 * `ovs-ofctl` dumps of the stamps or of all our flows, and one bundle per
 * change. Every `ovs-ofctl` call is OpenFlow 1.4 with `--no-names` (without it
 * each call first fetches the switch's table features and port names: ~15 ms
 * instead of ~4; research note 11). Pure. May not: run anything (the caller's
 * runner does, with its time limit).
 */
import { ProgramOutputError } from '../errors/program-output-error.js';
import { OVS_COLUMNS, parseOvsState } from '../host/ovs-json.js';
import type { ObservedBridge, ObservedPort } from '../host/model.js';
import { ALL_OURS, TABLE } from './cookie.js';

/** `ovs-ofctl`'s options on every call: OpenFlow 1.4 (bundles), no name look-ups. */
export const OFCTL_OPTIONS = ['-O', 'OpenFlow14', '--no-names'] as const;

/** Whole seconds for OVS's own `--timeout` (at least 1), from a time limit in ms. */
export function ovsTimeout(ms: number): string {
  return `--timeout=${Math.max(1, Math.ceil(ms / 1000))}`;
}

/** `ovs-vsctl` arguments listing every bridge, port and interface in one call (three JSON tables, one per line). */
export function lookupArgs(timeoutMs: number): string[] {
  return [
    ovsTimeout(timeoutMs),
    '--format=json',
    ...['--', `--columns=${OVS_COLUMNS.Bridge}`, 'list', 'Bridge'],
    ...['--', `--columns=${OVS_COLUMNS.Port}`, 'list', 'Port'],
    ...['--', `--columns=${OVS_COLUMNS.Interface}`, 'list', 'Interface'],
  ];
}

/** What {@link lookupArgs} reports: bridges and their ports. */
export interface OvsSnapshot {
  readonly bridges: readonly ObservedBridge[];
  readonly ports: readonly ObservedPort[];
}

/**
 * Read {@link lookupArgs}' output.
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when it is not three JSON tables.
 */
export function parseLookup(stdout: string): OvsSnapshot {
  const tables = stdout.split('\n').filter((line) => line.trim() !== '');
  const [bridges, ports, interfaces] = tables;
  if (tables.length !== 3 || bridges === undefined || ports === undefined || interfaces === undefined) {
    throw new ProgramOutputError('ovs-vsctl', 'three JSON tables (Bridge, Port, Interface), one per line', stdout);
  }
  const state = parseOvsState(bridges, ports, interfaces);
  return { bridges: state.bridges, ports: state.ports };
}

/** `ovs-ofctl` arguments dumping a bridge's stamps and canary (table 99 only: one small table). */
export function dumpStampsArgs(bridge: string, timeoutMs: number): string[] {
  return [...OFCTL_OPTIONS, ovsTimeout(timeoutMs), 'dump-flows', bridge, `table=${TABLE.stamps}`];
}

/** `ovs-ofctl` arguments dumping every flow of ours on a bridge (to count each program's flows). */
export function dumpOursArgs(bridge: string, timeoutMs: number): string[] {
  return [...OFCTL_OPTIONS, ovsTimeout(timeoutMs), 'dump-flows', bridge, `cookie=${ALL_OURS}`];
}

/** `ovs-ofctl` arguments applying one bundle (see `bundleText`) from stdin, atomically. */
export function bundleArgs(bridge: string, timeoutMs: number): string[] {
  return [...OFCTL_OPTIONS, ovsTimeout(timeoutMs), '--bundle', 'add-flows', bridge, '-'];
}
