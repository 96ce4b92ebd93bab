import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A value about to be written into nftables text failed its check at the
 * renderer's boundary (a MAC, address, CIDR, port, interface or domain name).
 * Nothing unchecked ever reaches `nft`.
 *
 * @example
 * ```
 * Invalid nft input: mac: expected a unicast MAC address like 52:54:00:12:34:56, found "52:54:00:12:34"
 * ```
 */
export class NftInputError extends TicryptNetError {
  /** What the value was (`mac`, `ip`, `port`, ...). */
  readonly field: string;
  /** The offending value. */
  readonly value: unknown;

  constructor(field: string, expected: string, value: unknown) {
    super(
      'E_NFT_INPUT',
      `Invalid nft input: ${field}: expected ${expected}, found ${JSON.stringify(value) ?? String(value)}`,
    );
    this.name = 'NftInputError';
    this.field = field;
    this.value = value;
  }
}
