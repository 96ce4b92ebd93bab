/**
 * Reading the named counters of `table inet ticrypt`: one `nft -j list
 * counters table inet ticrypt` for all of them (its cost grows with the
 * number of counters, a few per network, never with VMs or elements), and
 * the pure parser of its JSON. May not: change the table (a list only).
 */
import { z } from 'zod';
import { ProgramOutputError } from '../../errors/program-output-error.js';
import { runChecked, type ProgramRunner } from '../../exec/run.js';
import { TABLE } from './names.js';

/** One counter's values. */
export interface CounterValue {
  readonly packets: number;
  readonly bytes: number;
}

const Counter = z.object({
  family: z.string(),
  table: z.string(),
  name: z.string(),
  packets: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});

// Items are the metainfo and one `{ counter }` each; a `counter` item must have the counter's shape.
const Listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

/** The argv (after `nft`) that lists every named counter of the table as JSON. */
export function listCountersArgs(): string[] {
  return ['-j', 'list', 'counters', 'table', ...TABLE.split(' ')];
}

/**
 * The counters of `table inet ticrypt` in `nft -j list counters` output, by
 * name (counters of other tables, if any, are left out).
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when it is not nft's JSON listing.
 * @example parseCounters('{"nftables":[{"counter":{"family":"inet","table":"ticrypt","name":"dropped_egress","packets":3,"bytes":180}}]}')
 *   // Map { 'dropped_egress' => { packets: 3, bytes: 180 } }
 */
export function parseCounters(stdout: string): Map<string, CounterValue> {
  const [family, table] = TABLE.split(' ');
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (error) {
    throw new ProgramOutputError('nft', 'the JSON of `nft -j list counters`', stdout, { cause: error });
  }
  const parsed = Listing.safeParse(json);
  if (!parsed.success) throw new ProgramOutputError('nft', 'the JSON of `nft -j list counters`', stdout);
  const counters = new Map<string, CounterValue>();
  for (const item of parsed.data.nftables) {
    if (!('counter' in item)) continue;
    const read = Counter.safeParse(item.counter);
    if (!read.success) throw new ProgramOutputError('nft', 'the JSON of `nft -j list counters`', stdout);
    const counter = read.data;
    if (counter.family !== family || counter.table !== table) continue;
    counters.set(counter.name, { packets: counter.packets, bytes: counter.bytes });
  }
  return counters;
}

/**
 * Read every named counter of the table with one `nft` run.
 *
 * @throws {NftError} when nft fails (the table is absent, nft is missing).
 * @throws {ProgramOutputError} when its output cannot be read.
 */
export async function readCounters(run: ProgramRunner): Promise<Map<string, CounterValue>> {
  return parseCounters(await runChecked(run, `listing the counters of table ${TABLE}`, 'nft', listCountersArgs()));
}
