import { describe, expect, it } from 'vitest';
import { dayFileName, dayFilesOf, parseDayFileName, utcDay } from '../../../src/backend/audit/day-files.js';

describe('audit day file names', () => {
  it('names a day and its parts, and reads them back', () => {
    expect(dayFileName('2026-12-01', 0)).toBe('audit-2026-12-01.jsonl');
    expect(dayFileName('2026-12-01', 3)).toBe('audit-2026-12-01-3.jsonl');
    expect(parseDayFileName('audit-2026-12-01-3.jsonl')).toEqual({
      name: 'audit-2026-12-01-3.jsonl',
      day: '2026-12-01',
      part: 3,
    });
  });

  it.each([
    'audit-2026-13-01.jsonl',
    'audit-2026-02-30.jsonl',
    'audit-2026-12-01-0.jsonl',
    'x.jsonl',
    'audit-2026-12-01.json',
  ])('ignores %s', (name) => expect(parseDayFileName(name)).toBeUndefined());

  it('orders by day, then part (10 after 9)', () => {
    const names = [
      'audit-2026-12-02.jsonl',
      'audit-2026-12-01-10.jsonl',
      'cursor',
      'audit-2026-12-01-9.jsonl',
      'audit-2026-12-01.jsonl',
    ];
    expect(dayFilesOf(names).map((f) => f.name)).toEqual([
      'audit-2026-12-01.jsonl',
      'audit-2026-12-01-9.jsonl',
      'audit-2026-12-01-10.jsonl',
      'audit-2026-12-02.jsonl',
    ]);
  });

  it('takes the UTC day', () => {
    expect(utcDay(new Date('2026-12-01T23:59:59.999-01:00'))).toBe('2026-12-02');
  });
});
