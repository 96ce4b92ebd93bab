import { HostCommandError } from './host-command-error.js';

/** `ovs-ofctl` (Open vSwitch's OpenFlow tables: port security's flows) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class OvsOfctlError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'OvsOfctlError';
  }
}
