import { describe, expect, it } from 'vitest';
import { isDomainPattern } from '../../src/site/primitives.js';

describe('isDomainPattern: what an allow entry may name', () => {
  it.each(['pypi.org', 'files.pythonhosted.org', 'xn--bcher-kva.de', '1password.com', 'a.b-c.d9', '*.example.org'])(
    'accepts %j',
    (domain) => {
      expect(isDomainPattern(domain)).toBe(true);
    },
  );

  it.each([
    ['Pypi.org', 'upper case'],
    ['pypi.org.', 'trailing dot'],
    ['org', 'a bare TLD'],
    ['*.org', 'a wildcard over a TLD'],
    ['*', 'a bare wildcard'],
    ['**.example.org', 'a double star'],
    ['a.*.example.org', 'a star inside'],
    ['*example.org', 'a star without its dot'],
    ['a..org', 'an empty label'],
    ['-a.org', 'a leading hyphen'],
    ['a-.org', 'a trailing hyphen'],
    ['pypi.org/198.51.100.66', 'a slash'],
    ['pypi.org\nserver=198.51.100.66', 'a newline'],
    ['pypi.org,x', 'a comma'],
    ['pypi.org#x', 'a hash'],
    ['py pi.org', 'a space'],
    ['#', 'the match-all domain'],
    ['a_b.org', 'an underscore'],
    ['203.0.113.10', 'an address'],
    ['', 'nothing'],
    [`${'a'.repeat(64)}.org`, 'a 64-character label'],
    [`${'abcdefghi.'.repeat(26)}org`, 'more than 253 characters'],
    ['bücher.de', 'non-ASCII (punycode is accepted)'],
  ])('refuses %j (%s)', (domain) => {
    expect(isDomainPattern(domain)).toBe(false);
  });
});
