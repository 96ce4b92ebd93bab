import type { AllowEntry, AllowList, Registration } from '../../protocol/api.js';
import type { NicSsh } from '../nft/ssh.js';
import type { SshForward } from '../nft/types.js';

/** A registered NIC, its VM's allow entries and its SSH access: the unit the firewall is rendered from. */
export interface NicView {
  readonly registration: Registration;
  readonly entries: readonly AllowEntry[];
  /** Its SSH access through the backend (absent: none). */
  readonly ssh?: NicSsh;
}

/** One change to enforce: the touched NICs before and after. */
export interface EnforcedChange {
  readonly before: readonly NicView[];
  readonly after: readonly NicView[];
}

/** The whole state to enforce, as the store holds it. */
export interface EnforcedState {
  readonly registrations: readonly Registration[];
  readonly allowLists: readonly AllowList[];
  /** The SSH access of registered NICs. */
  readonly ssh: readonly SshForward[];
}

/**
 * Where the registry's decisions become real: the nftables table and the
 * dnsmasq host entries. The registry calls {@link Enforcer.change} inside its
 * store transaction and commits only when it resolves.
 */
export interface Enforcer {
  /** Make the kernel and dnsmasq equal to `state` (daemon start). */
  rebuild(state: EnforcedState): Promise<void>;
  /**
   * Make only the firewall equal to `state` (after the table was lost: dnsmasq
   * was not touched). Absent: {@link Enforcer.rebuild} is used.
   */
  rebuildFirewall?(state: EnforcedState): Promise<void>;
  /** Apply one change as one transaction; reject, having changed nothing, when it cannot. */
  change(change: EnforcedChange): Promise<void>;
}
