import type { AllowEntry, AllowList, Registration } from '../../protocol/api.js';

/** A registered NIC and its VM's allow entries: the unit the firewall is rendered from. */
export interface NicView {
  readonly registration: Registration;
  readonly entries: readonly AllowEntry[];
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
