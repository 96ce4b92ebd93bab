import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The backend's store cannot serve a request: an unreadable or foreign
 * database (`E_STORE`), or a network's DHCP range with no address left
 * (`E_ADDRESS_EXHAUSTED`).
 */
export class StoreError extends TicryptNetError {
  constructor(code: 'E_STORE' | 'E_ADDRESS_EXHAUSTED', message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}
