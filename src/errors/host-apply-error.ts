import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * `host apply` could not bring the host to the site's state: actions are
 * blocked (the operator's to do) or the host still differs after applying.
 * `remaining` holds one line per action still outstanding.
 */
export class HostApplyError extends TicryptNetError {
  readonly remaining: readonly string[];

  constructor(message: string, remaining: readonly string[]) {
    super('E_HOST_APPLY', `${message}:\n${remaining.map((line) => `  ${line}`).join('\n')}`);
    this.name = 'HostApplyError';
    this.remaining = remaining;
  }
}
