import { BoundaryInputError } from './boundary-input-error.js';

/**
 * A value about to be written into nftables text failed its check at the
 * renderer's boundary (a MAC, address, CIDR, port, interface or domain name).
 * Nothing unchecked ever reaches `nft`.
 *
 * @example
 * ```
 * nft input mac: expected a lower-case unicast MAC address like 52:54:00:12:34:56, found "52:54:00:12:34"
 * ```
 */
export class NftInputError extends BoundaryInputError {
  constructor(field: string, expected: string, found: unknown) {
    super('E_NFT_INPUT', 'nft', field, expected, found);
    this.name = 'NftInputError';
  }

  /** The offending value (the same as `found`). */
  get value(): unknown {
    return this.found;
  }
}
