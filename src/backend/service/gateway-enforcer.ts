import type { NftGateway } from '../nft/gateway.js';
import type { DnsmasqFleet } from './dnsmasq-fleet.js';
import type { EnforcedChange, EnforcedState, Enforcer, NicView } from './enforcer.js';

const key = (n: NicView) => `${n.registration.network}/${n.registration.mac}`;

/**
 * The production {@link Enforcer}: nftables first, then dnsmasq.
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
  ) {}

  async rebuild(state: EnforcedState): Promise<void> {
    await this.nft.rebuild({ registrations: state.registrations, allowLists: state.allowLists });
    await this.dnsmasq.start(state.registrations, state.domains);
  }

  async rebuildFirewall(state: EnforcedState): Promise<void> {
    await this.nft.rebuild({ registrations: state.registrations, allowLists: state.allowLists });
  }

  async change(change: EnforcedChange): Promise<void> {
    await this.nft.change(change.domains, change.before, change.after);
    try {
      const after = new Map(change.after.map((n) => [key(n), n]));
      for (const nic of change.before) if (!after.has(key(nic))) await this.dnsmasq.remove(nic.registration);
      for (const nic of change.after) await this.dnsmasq.put(nic.registration);
      if (change.domains.before.join() !== change.domains.after.join())
        await this.dnsmasq.setDomains(change.domains.after);
    } catch (error) {
      const reversed = { before: change.domains.after, after: change.domains.before };
      await this.nft.change(reversed, change.after, change.before).catch(() => undefined);
      throw error;
    }
  }
}
