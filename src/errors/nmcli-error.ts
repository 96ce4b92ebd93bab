import { HostCommandError } from './host-command-error.js';

/** `nmcli` (NetworkManager's VLAN connections) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class NmcliError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'NmcliError';
  }
}
