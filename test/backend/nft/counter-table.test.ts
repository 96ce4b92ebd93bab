import { describe, expect, it } from 'vitest';
import { DROPS, dropMark, SOURCE_DROPS } from '../../../src/backend/nft/counter-table.js';
import { MAX_NIC_ID } from '../../../src/backend/nft/marks.js';

describe('the marks a dropped packet carries to its counting and its drop', () => {
  const all = [...DROPS, ...SOURCE_DROPS].map(dropMark);

  it('gives every drop its own mark', () => {
    expect(new Set(all).size).toBe(DROPS.length + SOURCE_DROPS.length);
    expect(dropMark(['egress', 'from'])).toBe(0x00ffff05);
    expect(dropMark('spoofed_other')).toBe(0x00ffff0c);
  });

  it('leaves bits 24-31 (every possible fail-closed bit) clear, so no accepted packet carries one', () => {
    for (const mark of all) expect(mark & 0xff000000).toBe(0);
    for (const mark of all) expect(mark).toBeLessThanOrEqual(MAX_NIC_ID);
  });

  it('refuses a drop it does not know', () => {
    expect(() => dropMark(['egress', 'to'])).toThrow(RangeError);
    expect(() => dropMark('nonsense' as 'spoofed')).toThrow(RangeError);
  });
});
