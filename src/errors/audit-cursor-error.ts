import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The audit reader's resume cursor cannot be read or written
 * (`E_AUDIT_CURSOR`): not JSON, the wrong shape, or a file system error.
 *
 * @example
 * // audit cursor /var/lib/ticrypt-net/audit-cursor.json: expected {"v":1,"file","offset"}, found {"offset":-1}
 */
export class AuditCursorError extends TicryptNetError {
  /** The cursor file. */
  readonly path: string;

  constructor(path: string, detail: string, options?: ErrorOptions) {
    super('E_AUDIT_CURSOR', `audit cursor ${path}: ${detail}`, options);
    this.name = 'AuditCursorError';
    this.path = path;
  }
}
