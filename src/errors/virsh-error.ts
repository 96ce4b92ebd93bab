import { HostCommandError } from './host-command-error.js';

/** `virsh` (libvirt's networks) failed: a {@link HostCommandError} (`E_HOST_COMMAND`) of this program. */
export class VirshError extends HostCommandError {
  constructor(...args: ConstructorParameters<typeof HostCommandError>) {
    super(...args);
    this.name = 'VirshError';
  }
}
