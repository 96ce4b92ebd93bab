import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The flow audit's logger (ulogd) could not be started or did not come up.
 *
 * @example
 * ```
 * ulogd did not start (pid file /var/lib/ticrypt-net/audit/ulogd.pid, config /var/lib/ticrypt-net/audit/ulogd.conf): expected its pid within 5000 ms, found none; see /var/lib/ticrypt-net/audit/ulogd.log
 * ```
 */
export class AuditLoggerError extends TicryptNetError {
  constructor(
    readonly pidFile: string,
    readonly confFile: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super('E_AUDIT_LOGGER', `ulogd did not start (pid file ${pidFile}, config ${confFile}): ${detail}`, options);
    this.name = 'AuditLoggerError';
  }
}
