import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A change could not be enforced because `table inet ticrypt` is not as the
 * backend left it (deleted or flushed by someone else): nothing was changed,
 * the backend is rebuilding the table from its store, and the request may be
 * retried in a few seconds (`E_FIREWALL_UNAVAILABLE`, HTTP 503).
 */
export class FirewallUnavailableError extends TicryptNetError {
  constructor(options?: ErrorOptions) {
    super(
      'E_FIREWALL_UNAVAILABLE',
      'The firewall table is being restored (it was deleted or altered outside the backend): nothing changed; retry in a few seconds',
      options,
    );
    this.name = 'FirewallUnavailableError';
  }
}
