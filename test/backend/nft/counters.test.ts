import { describe, expect, it } from 'vitest';
import { listCountersArgs, parseCounters, readCounters } from '../../../src/backend/nft/counters.js';
import { ProgramOutputError } from '../../../src/errors/program-output-error.js';
import { NftError } from '../../../src/errors/nft-error.js';
import type { ProgramRunner } from '../../../src/exec/run.js';
import { counterNames } from '../../../src/backend/nft/counter-table.js';
import { defaultSite } from '../../../src/site/parse.js';

// What nft 1.0.6 prints for `nft -j list table inet ticrypt_counters` (one line; shortened): the table,
// its counters, chains and rules (a rule's `counter` is inside its `expr`, not an item of its own).
const LISTING = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'inet', name: 'ticrypt_counters', handle: 4 } },
    {
      counter: {
        family: 'inet',
        name: 'dropped_egress',
        table: 'ticrypt_counters',
        handle: 16,
        packets: 30,
        bytes: 2520,
      },
    },
    {
      counter: {
        family: 'inet',
        name: 'accepted_from_vms.secure',
        table: 'ticrypt_counters',
        handle: 9,
        packets: 50,
        bytes: 4200,
      },
    },
    {
      chain: {
        family: 'inet',
        table: 'ticrypt_counters',
        name: 'count_drop_egress_from',
        handle: 60,
      },
    },
    {
      rule: {
        family: 'inet',
        table: 'ticrypt_counters',
        chain: 'count_drop_egress_from',
        handle: 61,
        expr: [{ counter: 'dropped_egress' }],
      },
    },
    // Not of this table (a listing names one table; the parser still checks).
    { counter: { family: 'inet', name: 'dropped_egress', table: 'ticrypt', handle: 2, packets: 7, bytes: 7 } },
    { counter: { family: 'ip', name: 'dropped_egress', table: 'ticrypt_counters', handle: 2, packets: 7, bytes: 7 } },
  ],
});

describe('reading the counters table', () => {
  it('lists the counters table only (no set, so no element fetched), with one nft run', () => {
    expect(listCountersArgs()).toEqual(['-j', 'list', 'table', 'inet', 'ticrypt_counters']);
  });

  it('reads each counter of the table by name, and nothing else: not the chains, rules or another table', () => {
    expect(parseCounters(LISTING)).toEqual(
      new Map([
        ['dropped_egress', { packets: 30, bytes: 2520 }],
        ['accepted_from_vms.secure', { packets: 50, bytes: 4200 }],
      ]),
    );
  });

  it('reads counters of every name the ruleset declares', () => {
    const names = counterNames(defaultSite());
    const listing = JSON.stringify({
      nftables: names.map((name, i) => ({
        counter: { family: 'inet', table: 'ticrypt_counters', name, handle: i, packets: i, bytes: 84 * i },
      })),
    });
    const read = parseCounters(listing);
    expect([...read.keys()]).toEqual(names);
    expect(read.get(names[3]!)).toEqual({ packets: 3, bytes: 252 });
  });

  it('reads an empty table as no counters', () => {
    expect(parseCounters('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}').size).toBe(0);
  });

  it.each([
    ['not JSON', 'Error: No such file or directory'],
    ['another shape', '{"counters": []}'],
    [
      'a negative count',
      '{"nftables":[{"counter":{"family":"inet","table":"ticrypt_counters","name":"x","packets":-1,"bytes":0}}]}',
    ],
    [
      'a count that is not a number',
      '{"nftables":[{"counter":{"family":"inet","table":"ticrypt_counters","name":"x","packets":"1","bytes":0}}]}',
    ],
  ])('refuses %s, saying what it expected', (_what, text) => {
    expect(() => parseCounters(text)).toThrow(ProgramOutputError);
    expect(() => parseCounters(text)).toThrow(
      /nft printed what cannot be read: expected the JSON of `nft -j list table inet ticrypt_counters`/,
    );
  });

  it('runs nft once and says what failed when it fails', async () => {
    const calls: string[][] = [];
    const run =
      (exitCode: number, stdout: string): ProgramRunner =>
      async (program, args) => {
        calls.push([program, ...args]);
        return {
          command: [program, ...args],
          exitCode,
          signal: undefined,
          stdout,
          stderr: exitCode ? 'Error: No such file or directory' : '',
        };
      };
    expect((await readCounters(run(0, LISTING))).get('dropped_egress')).toEqual({ packets: 30, bytes: 2520 });
    expect(calls).toEqual([['nft', '-j', 'list', 'table', 'inet', 'ticrypt_counters']]);
    await expect(readCounters(run(1, ''))).rejects.toThrow(NftError);
    await expect(readCounters(run(1, ''))).rejects.toThrow(/listing the counters of table inet ticrypt_counters/);
  });
});
