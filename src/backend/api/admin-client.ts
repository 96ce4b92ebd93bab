import {
  API_PATHS,
  vmAllowListPath,
  vmGroupPath,
  vmPlacementPath,
  vmSshPath,
  vmSshSourcesPath,
  type AllowEntryBody,
  type AllowListAnswer,
  type AllowListsAnswer,
  type PlacementAnswer,
  type SetPlacementAnswer,
  type VmGroupAnswer,
  type SshForwardsAnswer,
  type VmSshAnswer,
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
 * await admin.setSshSources(vmUuid, ['198.51.100.0/24']); // who may SSH into it through the backend
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

  /**
   * Every SSH forward: per registered NIC on a network with SSH access, the
   * backend port (and address) whose connections reach its port 22.
   */
  sshForwards(): Promise<SshForwardsAnswer> {
    return this.client.call('GET', API_PATHS.sshForwards);
  }

  /** A VM's SSH access: its NICs' forwards and its narrowed client networks (`null`: the site's). */
  vmSsh(vmUuid: string): Promise<VmSshAnswer> {
    return this.client.call('GET', vmSshPath(vmUuid));
  }

  /**
   * Narrow who may SSH into a VM through the backend to `sources` (IPv4
   * networks or addresses inside the site's; empty: nobody). Connections from
   * client networks it loses are ended.
   *
   * @throws {BackendRequestError} `E_BACKEND_REFUSED` with backend code `E_SSH_SOURCES_OUTSIDE` for a source the
   * site does not allow.
   */
  setSshSources(vmUuid: string, sources: readonly string[]): Promise<VmSshAnswer> {
    return this.client.call('PUT', vmSshSourcesPath(vmUuid), { sources });
  }

  /** Give a VM each network's site sources again. */
  resetSshSources(vmUuid: string): Promise<VmSshAnswer> {
    return this.client.call('DELETE', vmSshSourcesPath(vmUuid));
  }
}
