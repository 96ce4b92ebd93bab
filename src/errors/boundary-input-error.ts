import { describeValue } from '../site/describe.js';
import { TicryptNetError } from './ticrypt-net-error.js';

/** The programs whose input text ticrypt-net writes, each with its own input error. */
export type Boundary = 'nft' | 'dnsmasq' | 'ovs-ofctl';

/**
 * A value about to be written into text another program reads (an nft script,
 * a dnsmasq config line or host entry file, an OpenFlow flow) failed its check at that
 * boundary: nothing unchecked reaches the program. The one shape of every
 * such refusal; {@link NftInputError}, {@link DnsmasqInputError} and
 * {@link FlowInputError} are the boundaries' classes.
 *
 * @example
 * ```
 * nft input mac: expected a lower-case unicast MAC address like 52:54:00:12:34:56, found "52:54:00:12:34"
 * ```
 */
export class BoundaryInputError extends TicryptNetError {
  /** The program the value was bound for. */
  readonly boundary: Boundary;
  /** Which input was refused, e.g. `registration.mac` or `options.allowedDomains[2]`. */
  readonly field: string;
  /** What a valid value looks like. */
  readonly expected: string;
  /** The refused value as it arrived. */
  readonly found: unknown;

  constructor(code: string, boundary: Boundary, field: string, expected: string, found: unknown) {
    super(code, `${boundary} input ${field}: expected ${expected}, found ${describeValue(found)}`);
    this.name = 'BoundaryInputError';
    this.boundary = boundary;
    this.field = field;
    this.expected = expected;
    this.found = found;
  }
}
