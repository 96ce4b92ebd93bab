import { BoundaryInputError } from './boundary-input-error.js';

/**
 * A value bound for a dnsmasq config line or host entry file was refused at the
 * renderer boundary: nothing reaches dnsmasq unchecked.
 *
 * @example
 * ```
 * dnsmasq input allowedDomains[2]: expected a lower-case domain name such as pypi.org, found "evil.org/1.2.3.4"
 * ```
 */
export class DnsmasqInputError extends BoundaryInputError {
  constructor(field: string, expected: string, found: unknown) {
    super('E_DNSMASQ_INPUT', 'dnsmasq', field, expected, found);
    this.name = 'DnsmasqInputError';
  }
}

/** Whether `value` is a {@link DnsmasqInputError} (compares the shape, so it works across module copies). */
export function isDnsmasqInputError(value: unknown): value is DnsmasqInputError {
  return value instanceof Error && (value as { code?: unknown }).code === 'E_DNSMASQ_INPUT';
}
