/**
 * Reading `ovs-vsctl --format=json` tables. OVSDB encodes values as atoms
 * (strings, numbers, booleans), `["uuid", id]`, `["set", [...]]` and
 * `["map", [[k, v], ...]]`; a set of one element is written as the bare atom.
 * Pure. May not: run ovs-vsctl (`./observe.ts` does).
 */
import { ProgramOutputError } from '../errors/program-output-error.js';

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
