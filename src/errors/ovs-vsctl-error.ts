import { HostCommandError } from './host-command-error.js';

/** `ovs-vsctl` (Open vSwitch's database: bridges, ports, VLAN tags) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class OvsVsctlError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'OvsVsctlError';
  }
}
