import type { NftGateway } from '../nft/gateway.js';
import type { DnsmasqFleet } from './dnsmasq-fleet.js';
import type { EnforcedChange, EnforcedState, Enforcer, NicView } from './enforcer.js';

const key = (n: NicView) => `${n.registration.network}/${n.registration.mac}`;

/**
 * What the DNS front takes from the registry's decisions: which NIC may
 * resolve which names (see src/backend/dns/). It is told last, once the
 * firewall and dnsmasq hold the change, and never fails the change: what it
 * cannot close it leaves to expire.
 */
export interface DnsPolicyFollower {
  /**
   * The whole state, once the firewall was rebuilt from it (daemon start, or
   * the guard's repair after the table was lost): every `dns_*` set is empty,
   * so nothing the front opened is open any more.
   */
  rebuild(state: EnforcedState): void;
  /** One change: resolves once what the change no longer allows is closed. */
  change(change: EnforcedChange): Promise<void>;
}

/**
 * The production {@link Enforcer}: nftables first, then dnsmasq, then the
 * DNS front's view of who may resolve what.
 *
 * The firewall changes first, in one transaction, so a removal closes access
 * before the DHCP reservation goes; if dnsmasq then fails, the firewall
 * change is reversed and the error rethrown (the registry rolls the store
 * back), so a refused change leaves nothing behind.
 */
export class GatewayEnforcer implements Enforcer {
  constructor(
    private readonly nft: NftGateway,
    private readonly dnsmasq: DnsmasqFleet,
    private readonly dns?: DnsPolicyFollower,
  ) {}

  async rebuild(state: EnforcedState): Promise<void> {
    await this.nft.rebuild({ registrations: state.registrations, allowLists: state.allowLists, ssh: state.ssh });
    await this.dnsmasq.start(state.registrations);
    this.dns?.rebuild(state);
  }

  async rebuildFirewall(state: EnforcedState): Promise<void> {
    await this.nft.rebuild({ registrations: state.registrations, allowLists: state.allowLists, ssh: state.ssh });
    this.dns?.rebuild(state);
  }

  async change(change: EnforcedChange): Promise<void> {
    await this.nft.change(change.before, change.after);
    try {
      const after = new Map(change.after.map((n) => [key(n), n]));
      for (const nic of change.before) if (!after.has(key(nic))) await this.dnsmasq.remove(nic.registration);
      for (const nic of change.after) await this.dnsmasq.put(nic.registration);
    } catch (error) {
      await this.nft.change(change.after, change.before).catch(() => undefined);
      throw error;
    }
    await this.dns?.change(change);
  }
}
