import { describe, expect, it } from 'vitest';
import { parseConntrackStat } from '../../../src/backend/audit/conntrack-stat.js';

// As kernel 6.18 shows it (two CPUs).
const TEXT = [
  'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart',
  '0000002a  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000001 0000000a 00000002 00000000  00000000 00000000 00000000 00000000',
  '0000002a  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000010 00000000 00000000  00000000 00000000 00000000 00000000',
].join('\n');

describe('the conntrack failure counts', () => {
  it('sums the per-CPU rows of drop, early_drop and insert_failed (hexadecimal)', () => {
    expect(parseConntrackStat(TEXT)).toEqual({ drop: 26, early_drop: 2, insert_failed: 1 });
  });

  it('refuses another format', () => {
    expect(parseConntrackStat('entries searched found\n00000001 00000002 00000003\n')).toBeUndefined();
    expect(parseConntrackStat('')).toBeUndefined();
  });
});
