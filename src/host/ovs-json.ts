/**
 * Reading `ovs-vsctl --format=json` tables. OVSDB encodes values as atoms
 * (strings, numbers, booleans), `["uuid", id]`, `["set", [...]]` and
 * `["map", [[k, v], ...]]`; a set of one element is written as the bare atom.
 * Pure. May not: run ovs-vsctl (`./observe.ts` does).
 */
import { ProgramOutputError } from '../errors/program-output-error.js';
import type { ObservedBridge, ObservedPort } from './model.js';

/** One row of a table, keyed by column heading. */
export type OvsRow = Readonly<Record<string, unknown>>;

/**
 * The rows of `ovs-vsctl --format=json list TABLE` output.
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when the text is not that JSON shape.
 */
export function parseOvsTable(text: string): OvsRow[] {
  const expected = '--format=json output with headings and data';
  let json: { headings?: unknown; data?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (error) {
    throw new ProgramOutputError('ovs-vsctl', expected, text, { cause: error });
  }
  if (!Array.isArray(json?.headings) || !Array.isArray(json.data)) {
    throw new ProgramOutputError('ovs-vsctl', expected, text);
  }
  const headings = json.headings.map(String);
  return json.data.map((row: unknown) => {
    const cells = Array.isArray(row) ? row : [];
    return Object.fromEntries(headings.map((heading, i) => [heading, cells[i]]));
  });
}

/** The elements of a set value (a bare atom is a set of one; `["set", []]` is empty). */
export function ovsSet(value: unknown): unknown[] {
  if (Array.isArray(value) && value[0] === 'set' && Array.isArray(value[1])) return value[1] as unknown[];
  if (value === undefined || value === null) return [];
  return [value];
}

/** A UUID value (`["uuid", id]`) as its id; anything else as `undefined`. */
export function ovsUuid(value: unknown): string | undefined {
  return Array.isArray(value) && value[0] === 'uuid' && typeof value[1] === 'string' ? value[1] : undefined;
}

/** A map value as a plain record of strings. */
export function ovsMap(value: unknown): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== 'map' || !Array.isArray(value[1])) return {};
  const out: Record<string, string> = {};
  for (const pair of value[1] as unknown[]) {
    if (Array.isArray(pair) && pair.length === 2) out[String(pair[0])] = String(pair[1]);
  }
  return out;
}

/** An optional integer column (`tag`): the number, or `undefined` for the empty set. */
export function ovsOptionalInt(value: unknown): number | undefined {
  const [first] = ovsSet(value);
  return typeof first === 'number' ? first : undefined;
}

/** An optional string column (`vlan_mode`, `datapath_type` when empty). */
export function ovsOptionalString(value: unknown): string | undefined {
  const [first] = ovsSet(value);
  return typeof first === 'string' && first !== '' ? first : undefined;
}

/** The columns {@link parseOvsState} reads of each table. */
export const OVS_COLUMNS = {
  Bridge: '_uuid,name,ports,datapath_type,external_ids,fail_mode',
  Port: '_uuid,name,tag,trunks,vlan_mode,external_ids,interfaces',
  Interface: '_uuid,name,type,options,external_ids,ofport',
} as const;

/** Join the three ovs-vsctl JSON listings (Bridge, Port, Interface) into bridges and ports. */
export function parseOvsState(
  bridgeJson: string,
  portJson: string,
  interfaceJson: string,
): { ovsRunning: true; bridges: ObservedBridge[]; ports: ObservedPort[] } {
  return joinOvsState(parseOvsTable(bridgeJson), parseOvsTable(portJson), parseOvsTable(interfaceJson));
}

/** Join the rows of the Bridge, Port and Interface tables (columns as {@link OVS_COLUMNS} names them) into bridges and ports. */
export function joinOvsState(
  bridgeRows: readonly OvsRow[],
  portRows: readonly OvsRow[],
  interfaceRows: readonly OvsRow[],
): { ovsRunning: true; bridges: ObservedBridge[]; ports: ObservedPort[] } {
  const bridgeOf = new Map<string, string>();
  const bridges = bridgeRows.map((row) => {
    const name = String(row.name);
    for (const port of ovsSet(row.ports)) {
      const id = ovsUuid(port);
      if (id !== undefined) bridgeOf.set(id, name);
    }
    const failMode = ovsOptionalString(row.fail_mode);
    return {
      name,
      datapathType: ovsOptionalString(row.datapath_type) ?? '',
      externalIds: ovsMap(row.external_ids),
      ...(failMode === undefined ? {} : { failMode }),
    };
  });
  const interfaces = new Map(interfaceRows.map((row) => [ovsUuid(row._uuid) ?? '', row]));
  const ports: ObservedPort[] = [];
  for (const row of portRows) {
    const bridge = bridgeOf.get(ovsUuid(row._uuid) ?? '');
    if (bridge === undefined) continue;
    const iface = interfaces.get(ovsUuid(ovsSet(row.interfaces)[0]) ?? '');
    const tag = ovsOptionalInt(row.tag);
    const vlanMode = ovsOptionalString(row.vlan_mode);
    // OVS says -1 for an interface it could not open: no OpenFlow port.
    const ofport = iface === undefined ? undefined : ovsOptionalInt(iface.ofport);
    ports.push({
      name: String(row.name),
      bridge,
      ...(tag === undefined ? {} : { tag }),
      trunks: ovsSet(row.trunks)
        .filter((v): v is number => typeof v === 'number')
        .sort((a, b) => a - b),
      ...(vlanMode === undefined ? {} : { vlanMode }),
      externalIds: ovsMap(row.external_ids),
      type: iface === undefined ? '' : (ovsOptionalString(iface.type) ?? ''),
      options: iface === undefined ? {} : ovsMap(iface.options),
      interfaceExternalIds: iface === undefined ? {} : ovsMap(iface.external_ids),
      ...(ofport === undefined || ofport < 1 ? {} : { ofport }),
    });
  }
  return { ovsRunning: true, bridges, ports };
}
