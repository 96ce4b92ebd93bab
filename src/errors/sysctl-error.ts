import { HostCommandError } from './host-command-error.js';

/** `sysctl` (kernel settings) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class SysctlError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'SysctlError';
  }
}
