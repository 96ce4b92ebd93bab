import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * `backend apply` could not bring the backend to the site's state: actions
 * are blocked (the operator's to do) or it still differs after applying.
 * `remaining` holds one line per action still outstanding.
 */
export class BackendApplyError extends TicryptNetError {
  readonly remaining: readonly string[];

  constructor(message: string, remaining: readonly string[]) {
    super('E_BACKEND_APPLY', `${message}:\n${remaining.map((line) => `  ${line}`).join('\n')}`);
    this.name = 'BackendApplyError';
    this.remaining = remaining;
  }
}
