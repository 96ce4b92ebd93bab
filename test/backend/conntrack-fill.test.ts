import { describe, expect, it } from 'vitest';
import { readConntrackFill } from '../../src/backend/conntrack-fill.js';

const files = (values: Record<string, string>) => async (path: string) => {
  const name = path.split('/').pop() ?? '';
  const value = values[name];
  if (value === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  return value;
};

describe('the conntrack table fill', () => {
  it('reads nf_conntrack_count and nf_conntrack_max', async () => {
    expect(await readConntrackFill(files({ nf_conntrack_count: '1234\n', nf_conntrack_max: '262144\n' }))).toEqual({
      count: 1234,
      max: 262144,
    });
  });

  it('fails when a file is absent (no conntrack yet) or holds no count', async () => {
    await expect(readConntrackFill(files({ nf_conntrack_max: '10' }))).rejects.toThrow(/ENOENT/);
    await expect(readConntrackFill(files({ nf_conntrack_count: 'x', nf_conntrack_max: '10' }))).rejects.toThrow(
      /nf_conntrack_count printed what cannot be read: expected a non-negative integer/,
    );
  });
});
