import { describe, expect, it } from 'vitest';
import { parseTimeArg } from '../../../src/backend/audit/time-arg.js';
import { settledCode } from '../../support/error-code.js';

const now = new Date('2026-12-01T12:00:00Z');

describe('audit time arguments', () => {
  it.each([
    ['24h', '2026-11-30T12:00:00.000Z'],
    ['90s', '2026-12-01T11:58:30.000Z'],
    ['30m', '2026-12-01T11:30:00.000Z'],
    ['7d', '2026-11-24T12:00:00.000Z'],
    ['2026-12-01T08:00:00Z', '2026-12-01T08:00:00.000Z'],
    ['2026-12-01T08:00:00+01:00', '2026-12-01T07:00:00.000Z'],
    ['2026-12-01T08:00', '2026-12-01T08:00:00.000Z'],
    ['2026-12-01', '2026-12-01T00:00:00.000Z'],
  ])('%s', (value, iso) => {
    expect(parseTimeArg('--since', value, now).toISOString()).toBe(iso);
  });

  it.each(['', 'yesterday', '24', '-1h', '1y', '2026-13-45'])('refuses %j with E_USAGE', async (value) => {
    expect(await settledCode(Promise.resolve().then(() => parseTimeArg('--since', value, now)))).toBe('E_USAGE');
    expect(() => parseTimeArg('--since', value, now)).toThrow(/--since: expected an ISO time/);
  });
});
