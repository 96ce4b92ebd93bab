import {
  API_PATHS,
  vmAllowListPath,
  vmGroupPath,
  vmPlacementPath,
  type AllowEntryBody,
  type AllowListAnswer,
  type AllowListsAnswer,
  type PlacementAnswer,
  type SetPlacementAnswer,
  type VmGroupAnswer,
} from '../../protocol/api.js';
import { BackendClient, type BackendClientOptions } from './client.js';

/**
 * The VM launcher's (and the `ticrypt-net` CLI's) typed client of the admin
 * API, with an admin token: where each VM may run, what it may reach, and
 * which group's VMs it reaches on `peers: groups` networks.
 *
 * Placement: before `virsh start` on a host, place the VM there; for a
 * migration, place it on both hosts before the destination starts it, and on
 * the destination only once the source has stopped it; on a stop, place it
 * nowhere. On networks that enforce placement (the default) a host may
 * register only the NICs of VMs placed on it, and a host removed from a VM's
 * placement loses its registrations of that VM at once.
 *
 * @example
 * const admin = new AdminClient({ url: 'https://198.18.0.1:8443', token, ca });
 * await admin.setPlacement(vmUuid, ['kvm-07']);
 * await admin.setAllowList(vmUuid, [{ address: '203.0.113.10', protocol: 'tcp', ports: 443 }]);
 */
export class AdminClient {
  private readonly client: BackendClient;

  constructor(options: BackendClientOptions | BackendClient) {
    this.client = options instanceof BackendClient ? options : new BackendClient(options);
  }

  /**
   * Set the hosts a VM may run on; answers the placement and how many
   * registrations of hosts left out were revoked.
   *
   * @throws {BackendRequestError} `E_BACKEND_REFUSED` (e.g. a bad host name) or `E_BACKEND_UNREACHABLE`.
   */
  setPlacement(vmUuid: string, hosts: readonly string[]): Promise<SetPlacementAnswer> {
    return this.client.call('PUT', vmPlacementPath(vmUuid), { hosts });
  }

  /** The hosts a VM may run on. */
  placement(vmUuid: string): Promise<PlacementAnswer> {
    return this.client.call('GET', vmPlacementPath(vmUuid));
  }

  /**
   * Replace a VM's allow-list (no entries: no egress); answers the entries as
   * stored. `entries` may be anything (a file's content): the backend validates it.
   */
  setAllowList(vmUuid: string, entries: readonly AllowEntryBody[] | unknown): Promise<AllowListAnswer> {
    return this.client.call('PUT', vmAllowListPath(vmUuid), { entries });
  }

  /** A VM's allow-list. */
  allowList(vmUuid: string): Promise<AllowListAnswer> {
    return this.client.call('GET', vmAllowListPath(vmUuid));
  }

  /** Every VM's allow-list. */
  allowLists(): Promise<AllowListsAnswer> {
    return this.client.call('GET', API_PATHS.allowLists);
  }

  /** Put a VM in a group on `peers: groups` networks (created when new), or in none (`null`). */
  setGroup(vmUuid: string, group: string | null): Promise<VmGroupAnswer> {
    return this.client.call('PUT', vmGroupPath(vmUuid), { group });
  }

  /** A VM's group. */
  group(vmUuid: string): Promise<VmGroupAnswer> {
    return this.client.call('GET', vmGroupPath(vmUuid));
  }
}
