import { describe, expect, it } from 'vitest';
import { parseDayFileName } from '../../../src/backend/audit/day-files.js';
import { dayBefore, planRetention } from '../../../src/backend/audit/retention.js';

const file = (name: string, bytes: number) => ({ file: parseDayFileName(name)!, bytes });
const files = [
  file('audit-2026-11-01.jsonl', 100),
  file('audit-2026-11-02.jsonl', 100),
  file('audit-2026-11-30.jsonl', 100),
  file('audit-2026-12-01.jsonl', 100),
];
const chosen = (settings: { retainDays: number; maxTotalBytes: number }, list = files) =>
  planRetention(list, '2026-12-01', settings).map((c) => [c.file.file.name, c.reason]);

describe('audit retention plan', () => {
  it('keeps everything within age and size', () => {
    expect(chosen({ retainDays: 400, maxTotalBytes: 1000 })).toEqual([]);
  });
  it('removes files older than retainDays', () => {
    expect(dayBefore('2026-12-01', 29)).toBe('2026-11-02');
    expect(chosen({ retainDays: 29, maxTotalBytes: 1000 })).toEqual([['audit-2026-11-01.jsonl', 'age']]);
  });
  it('removes the oldest while the total passes maxTotalBytes', () => {
    expect(chosen({ retainDays: 400, maxTotalBytes: 250 })).toEqual([
      ['audit-2026-11-01.jsonl', 'size'],
      ['audit-2026-11-02.jsonl', 'size'],
    ]);
  });
  it('never removes the newest file, however old or large', () => {
    expect(chosen({ retainDays: 1, maxTotalBytes: 1 })).toEqual([
      ['audit-2026-11-01.jsonl', 'age'],
      ['audit-2026-11-02.jsonl', 'age'],
      ['audit-2026-11-30.jsonl', 'size'],
    ]);
    expect(chosen({ retainDays: 1, maxTotalBytes: 1 }, [file('audit-2020-01-01.jsonl', 1e9)])).toEqual([]);
  });
});
