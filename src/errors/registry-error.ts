import { TicryptNetError } from './ticrypt-net-error.js';

/** The codes of {@link RegistryError}. */
export type RegistryErrorCode = 'E_UNKNOWN_NETWORK' | 'E_MAC_CONFLICT' | 'E_NOT_PLACED' | 'E_QUOTA_EXCEEDED';

/**
 * A registration request the backend refuses on its merits:
 * `E_UNKNOWN_NETWORK` (the site has no such network), `E_MAC_CONFLICT`
 * (another VM holds that MAC on that network), `E_NOT_PLACED` (the VM launcher
 * did not place the VM on the requesting host, and the network enforces
 * placement), `E_QUOTA_EXCEEDED` (the host or the VM is at its registration cap).
 */
export class RegistryError extends TicryptNetError {
  constructor(code: RegistryErrorCode, message: string) {
    super(code, message);
    this.name = 'RegistryError';
  }
}
