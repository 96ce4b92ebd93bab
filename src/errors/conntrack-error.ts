import { ProgramError, type ProgramFailure } from './program-error.js';

/**
 * `conntrack -D` failed to delete the connections a change ended (the change
 * itself is applied: the firewall already refuses what they carry).
 *
 * @example
 * ```
 * conntrack failed (exit 2) deleting connections: conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters
 * ```
 */
export class ConntrackError extends ProgramError {
  constructor(failure: ProgramFailure, options?: ErrorOptions) {
    super('E_CONNTRACK', failure, 'deleting connections', options);
    this.name = 'ConntrackError';
  }
}
