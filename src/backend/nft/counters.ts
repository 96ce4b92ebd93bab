/**
 * Reading the data-plane counters: one `nft -j list table inet
 * ticrypt_counters` for all of them, and the pure parser of its JSON. nft
 * 1.0.6 fetches the elements of every set of the table it lists from, and
 * for `list counters` (even `list counters table X` or `list counter X N`)
 * of every table: 10-20 s with 440k elements at 10,000 VMs. The counters
 * table has no set, so its listing costs ~40 ms at any number of VMs (see
 * `counter-table.ts`). May not: change a table (a list only).
 */
import { z } from 'zod';
import { ProgramOutputError } from '../../errors/program-output-error.js';
import { runChecked, type ProgramRunner } from '../../exec/run.js';
import { COUNTER_TABLE } from './names.js';

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

// Items are the metainfo, the table, and one `{ counter }`, `{ chain }` or `{ rule }` each; a `counter` item must have the counter's shape.
const Listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

/** What the listing is called in errors. */
const WHAT = `the JSON of \`nft -j list table ${COUNTER_TABLE}\``;

/** The argv (after `nft`) that lists the counters table (its counters, chains and rules) as JSON. */
export function listCountersArgs(): string[] {
  return ['-j', 'list', 'table', ...COUNTER_TABLE.split(' ')];
}

/**
 * The named counters of `table inet ticrypt_counters` in nft's JSON listing,
 * by name (other items, and counters of other tables, are left out).
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when it is not nft's JSON listing.
 * @example parseCounters('{"nftables":[{"counter":{"family":"inet","table":"ticrypt_counters","name":"dropped_egress","packets":3,"bytes":180}}]}')
 *   // Map { 'dropped_egress' => { packets: 3, bytes: 180 } }
 */
export function parseCounters(stdout: string): Map<string, CounterValue> {
  const [family, table] = COUNTER_TABLE.split(' ');
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (error) {
    throw new ProgramOutputError('nft', WHAT, stdout, { cause: error });
  }
  const parsed = Listing.safeParse(json);
  if (!parsed.success) throw new ProgramOutputError('nft', WHAT, stdout);
  const counters = new Map<string, CounterValue>();
  for (const item of parsed.data.nftables) {
    if (!('counter' in item)) continue;
    const read = Counter.safeParse(item.counter);
    if (!read.success) throw new ProgramOutputError('nft', WHAT, stdout);
    const counter = read.data;
    if (counter.family !== family || counter.table !== table) continue;
    counters.set(counter.name, { packets: counter.packets, bytes: counter.bytes });
  }
  return counters;
}

/**
 * Read every named counter of the counters table with one `nft` run.
 *
 * @throws {NftError} when nft fails (the table is absent, nft is missing).
 * @throws {ProgramOutputError} when its output cannot be read.
 */
export async function readCounters(run: ProgramRunner): Promise<Map<string, CounterValue>> {
  return parseCounters(
    await runChecked(run, `listing the counters of table ${COUNTER_TABLE}`, 'nft', listCountersArgs()),
  );
}
