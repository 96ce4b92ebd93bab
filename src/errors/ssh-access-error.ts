import { TicryptNetError } from './ticrypt-net-error.js';

/** The codes of {@link SshAccessError}. */
export type SshAccessErrorCode = 'E_SSH_PORTS_EXHAUSTED' | 'E_SSH_PORT_IN_USE' | 'E_SSH_SOURCES_OUTSIDE';

/**
 * SSH access through the backend cannot be given as asked, and nothing
 * changed: `E_SSH_PORTS_EXHAUSTED` (every port of the network's range is held
 * by a registered NIC or in quarantine), `E_SSH_PORT_IN_USE` (the ports left
 * are taken by listening sockets of other programs on the backend),
 * `E_SSH_SOURCES_OUTSIDE` (an admin's client networks for a VM lie outside
 * what the site allows: a VM's sources narrow the site's, never widen them).
 */
export class SshAccessError extends TicryptNetError {
  constructor(
    code: SshAccessErrorCode,
    message: string,
    /** The network whose SSH access it concerns, when one. */
    readonly network?: string,
  ) {
    super(code, message);
    this.name = 'SshAccessError';
  }
}
