import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A caller asked for something that does not exist or does not fit, e.g. a
 * network name the site does not have, or a portgroup the network lacks.
 */
export class UsageError extends TicryptNetError {
  constructor(message: string) {
    super('E_USAGE', message);
    this.name = 'UsageError';
  }
}
