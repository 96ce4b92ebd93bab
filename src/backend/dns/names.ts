/**
 * Domain names as the DNS front sees them: the base of a wildcard pattern
 * (the patterns themselves are checked at the API, `isDomainPattern` in
 * src/site/primitives.ts), and the names a query may ask for. Pure.
 */

/** The base of a wildcard pattern (`*.example.org` → `example.org`), or `undefined` for a plain name. */
export function wildcardBase(pattern: string): string | undefined {
  return pattern.startsWith('*.') ? pattern.slice(2) : undefined;
}

const QUERY_LABEL = /^[a-z0-9_-]{1,63}$/;

/**
 * A query name in the one form the front judges and forwards: lower case, no
 * trailing dot; `undefined` when it is not a host name (longer than 253
 * characters, an empty label or one over 63, a byte other than letters,
 * digits, `-` and `_`, or the root).
 *
 * @example normalizeQueryName('PyPI.org.') // 'pypi.org'
 */
export function normalizeQueryName(name: string): string | undefined {
  const lower = name.toLowerCase().replace(/\.$/, '');
  if (lower.length === 0 || lower.length > 253) return undefined;
  return lower.split('.').every((label) => QUERY_LABEL.test(label)) ? lower : undefined;
}
