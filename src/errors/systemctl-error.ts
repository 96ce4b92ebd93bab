import { HostCommandError } from './host-command-error.js';

/** `systemctl` (units) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class SystemctlError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'SystemctlError';
  }
}
