import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The audit store cannot write or read its day files (`E_AUDIT_STORE`):
 * directory missing and not creatable, disk full, a file unreadable, the
 * store used after `close`. Carries the path and the operation.
 *
 * @example
 * // audit store: append to /var/lib/ticrypt-net/audit/audit-2026-12-01.jsonl failed: ENOSPC: no space left on device
 */
export class AuditStoreError extends TicryptNetError {
  /** The file or directory concerned. */
  readonly path: string;
  /** What the store was doing: `open`, `append`, `fsync`, `rotate`, `retention`, `read`. */
  readonly operation: string;

  constructor(operation: string, path: string, detail: string, options?: ErrorOptions) {
    super('E_AUDIT_STORE', `audit store: ${operation} ${path} failed: ${detail}`, options);
    this.name = 'AuditStoreError';
    this.path = path;
    this.operation = operation;
  }
}
