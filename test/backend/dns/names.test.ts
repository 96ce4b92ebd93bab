import { describe, expect, it } from 'vitest';
import { normalizeQueryName, wildcardBase } from '../../../src/backend/dns/names.js';

describe('wildcardBase', () => {
  it('names the base of a wildcard', () => {
    expect(wildcardBase('*.example.org')).toBe('example.org');
    expect(wildcardBase('example.org')).toBeUndefined();
  });
});

describe('normalizeQueryName: the one form a query name is judged and forwarded in', () => {
  it.each([
    ['PyPI.Org.', 'pypi.org'],
    ['_dmarc.example.org', '_dmarc.example.org'],
    ['a.b', 'a.b'],
  ])('%j is %j', (name, normalized) => {
    expect(normalizeQueryName(name)).toBe(normalized);
  });

  it.each([
    ['.', 'the root'],
    ['', 'nothing'],
    ['a..b', 'an empty label'],
    [`${'a'.repeat(64)}.org`, 'a 64-character label'],
    [`${'abcdefghi.'.repeat(26)}org`, 'more than 253 characters'],
    ['a b.org', 'a space'],
    ['a\u0000.org', 'a zero byte'],
    ['\ufffd.org', 'a byte dns-packet could not read as UTF-8'],
    ['a*.org', 'a star'],
  ])('refuses %j (%s)', (name) => {
    expect(normalizeQueryName(name)).toBeUndefined();
  });
});
