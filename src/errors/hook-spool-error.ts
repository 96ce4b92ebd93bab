import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The host's spool of undelivered hook events cannot be written or read
 * (`spoolDir` missing and not creatable, disk full, a corrupt entry).
 */
export class HookSpoolError extends TicryptNetError {
  /** The spool file or directory concerned. */
  readonly path: string;

  constructor(path: string, message: string, options?: ErrorOptions) {
    super('E_HOOK_SPOOL', message, options);
    this.name = 'HookSpoolError';
    this.path = path;
  }
}
