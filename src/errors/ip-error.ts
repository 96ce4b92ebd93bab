import { HostCommandError } from './host-command-error.js';

/** `ip` (links, addresses, routes) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class IpError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'IpError';
  }
}
