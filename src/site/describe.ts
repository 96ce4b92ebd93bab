/**
 * How a found value is shown in an error message: short, unambiguous, and never
 * echoing a huge input back whole.
 *
 * @example describeValue(5000) === '5000'; describeValue('x') === '"x"'; describeValue(undefined) === 'nothing'
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > 64 ? `${value.slice(0, 61)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** `expected X, found Y`: the one shape every validation message takes. */
export function expectedFound(expected: string, found: unknown): string {
  return `expected ${expected}, found ${describeValue(found)}`;
}
