import { describe, expect, it } from 'vitest';
import { listCountersArgs, parseCounters, readCounters } from '../../../src/backend/nft/counters.js';
import { ProgramOutputError } from '../../../src/errors/program-output-error.js';
import { NftError } from '../../../src/errors/nft-error.js';
import type { ProgramRunner } from '../../../src/exec/run.js';

// What nft 1.0.6 prints for `nft -j list counters table inet ticrypt` (one line; shortened).
const LISTING = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { counter: { family: 'inet', name: 'dropped_egress', table: 'ticrypt', handle: 4, packets: 30, bytes: 2520 } },
    {
      counter: {
        family: 'inet',
        name: 'accepted_from_vms.secure',
        table: 'ticrypt',
        handle: 9,
        packets: 50,
        bytes: 4200,
      },
    },
    { counter: { family: 'ip', name: 'dropped_egress', table: 'other', handle: 2, packets: 7, bytes: 7 } },
  ],
});

describe('reading the named counters of table inet ticrypt', () => {
  it('lists the counters of the table only, with one nft run', () => {
    expect(listCountersArgs()).toEqual(['-j', 'list', 'counters', 'table', 'inet', 'ticrypt']);
  });

  it('reads each counter of the table by name, and none of another table', () => {
    expect(parseCounters(LISTING)).toEqual(
      new Map([
        ['dropped_egress', { packets: 30, bytes: 2520 }],
        ['accepted_from_vms.secure', { packets: 50, bytes: 4200 }],
      ]),
    );
  });

  it('reads an empty table as no counters', () => {
    expect(parseCounters('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}').size).toBe(0);
  });

  it.each([
    ['not JSON', 'Error: No such file or directory'],
    ['another shape', '{"counters": []}'],
    [
      'a negative count',
      '{"nftables":[{"counter":{"family":"inet","table":"ticrypt","name":"x","packets":-1,"bytes":0}}]}',
    ],
    [
      'a count that is not a number',
      '{"nftables":[{"counter":{"family":"inet","table":"ticrypt","name":"x","packets":"1","bytes":0}}]}',
    ],
  ])('refuses %s, saying what it expected', (_what, text) => {
    expect(() => parseCounters(text)).toThrow(ProgramOutputError);
    expect(() => parseCounters(text)).toThrow(
      /nft printed what cannot be read: expected the JSON of `nft -j list counters`/,
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
    expect(calls).toEqual([['nft', '-j', 'list', 'counters', 'table', 'inet', 'ticrypt']]);
    await expect(readCounters(run(1, ''))).rejects.toThrow(NftError);
    await expect(readCounters(run(1, ''))).rejects.toThrow(/listing the counters of table inet ticrypt/);
  });
});
