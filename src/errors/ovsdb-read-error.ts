import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * Open vSwitch's database could not be read over its socket (the hook's
 * look-up of its NICs' ports): no socket, no answer in time, or an error
 * answer. Carries the socket's path.
 */
export class OvsdbReadError extends TicryptNetError {
  readonly path: string;

  constructor(path: string, message: string) {
    super('E_OVSDB_READ', message);
    this.name = 'OvsdbReadError';
    this.path = path;
  }
}
