import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A registration request the backend refuses on its merits:
 * `E_UNKNOWN_NETWORK` (the site has no such network) or `E_MAC_CONFLICT`
 * (another VM holds that MAC on that network).
 */
export class RegistryError extends TicryptNetError {
  constructor(code: 'E_UNKNOWN_NETWORK' | 'E_MAC_CONFLICT', message: string) {
    super(code, message);
    this.name = 'RegistryError';
  }
}
