/**
 * Who may ask the DNS front, by the address a query comes from: the NICs
 * registered on allow-list networks with controlled DNS (the firewall drops
 * port 53 from any other source there), each with its VM's compiled policy.
 */
import type { Network, Site } from '../../site/model.js';
import type { AllowEntry, AllowList, Registration } from '../../protocol/api.js';
import { NamePolicy, type DomainEntry, type WildcardLimits } from './policy.js';

/** What the front keeps of a registration: where the NIC is, who it is, and its id (the key of what it opens). */
export type DnsNic = Pick<Registration, 'network' | 'mac' | 'ip' | 'nicId' | 'vmUuid'>;

/**
 * A NIC the front answers. It keeps only what answers need (the NIC and its
 * VM's domain entries), not the registry's objects: at 10,000 VMs with 20
 * entries each, holding those cost ~45 MB of heap, and the service's heap is
 * what every fork of `nft` pays for.
 */
export interface DnsClient {
  /** `network/mac`: the NIC, as the opener's ledger keys it. */
  readonly key: string;
  readonly registration: DnsNic;
  /** The VM's domain entries (address entries are the firewall's alone). */
  readonly entries: readonly DomainEntry[];
  readonly policy: NamePolicy;
}

/** A registered NIC and its VM's allow entries. */
export interface ClientView {
  readonly registration: Registration;
  readonly entries: readonly AllowEntry[];
}

/** Whether the front serves a network: controlled DNS, and allow-list egress (which pins every source). */
export function servesNetwork(network: Network): boolean {
  return network.dns === 'controlled' && network.egress === 'allow-list';
}

/** The front's clients by network and source address. */
export class DnsClients {
  private readonly byAddress = new Map<string, Map<string, DnsClient>>();
  private readonly byKey = new Map<string, DnsClient>();
  private readonly served: ReadonlySet<string>;
  /** The policy of every VM without domain entries: one, shared (it names nothing). */
  private readonly noNames: NamePolicy;

  constructor(
    site: Site,
    private readonly limits?: WildcardLimits,
  ) {
    this.served = new Set(site.networks.filter(servesNetwork).map((n) => n.name));
    this.noNames = NamePolicy.of([], limits);
  }

  /** The client sending from `ip` on `network`, if registered. */
  find(network: string, ip: string): DnsClient | undefined {
    return this.byAddress.get(network)?.get(ip);
  }

  /** How many clients are known. */
  get size(): number {
    return this.byKey.size;
  }

  /** Replace every client (daemon start). */
  rebuild(registrations: readonly Registration[], allowLists: readonly AllowList[]): void {
    this.byAddress.clear();
    this.byKey.clear();
    const entries = new Map(allowLists.map((l) => [l.vmUuid, l.entries]));
    for (const registration of registrations)
      this.put({ registration, entries: entries.get(registration.vmUuid) ?? [] });
  }

  /**
   * Apply one change: NICs `before` as they were, `after` as they are now.
   * Returns the clients that went away and those whose NIC or entries changed
   * (with their new state), for the opener to close what they lost.
   */
  apply(before: readonly ClientView[], after: readonly ClientView[]): { gone: DnsClient[]; changed: DnsClient[] } {
    const keyOf = (v: ClientView) => `${v.registration.network}/${v.registration.mac}`;
    const afterKeys = new Set(after.map(keyOf));
    const gone: DnsClient[] = [];
    const changed: DnsClient[] = [];
    for (const view of before) {
      const old = this.byKey.get(keyOf(view));
      if (old !== undefined && !afterKeys.has(old.key)) {
        this.remove(old);
        gone.push(old);
      }
    }
    for (const view of after) {
      const old = this.byKey.get(keyOf(view));
      const next = this.put(view);
      if (old !== undefined && next !== undefined && !sameClient(old, next)) changed.push(next);
    }
    return { gone, changed };
  }

  private put(view: ClientView): DnsClient | undefined {
    const { registration } = view;
    if (!this.served.has(registration.network)) return undefined;
    const key = `${registration.network}/${registration.mac}`;
    const old = this.byKey.get(key);
    if (old !== undefined) this.remove(old);
    const entries = view.entries.filter((e): e is DomainEntry => e.type === 'domain');
    const { network, mac, ip, nicId, vmUuid } = registration;
    const client: DnsClient = {
      key,
      registration: { network, mac, ip, nicId, vmUuid },
      entries,
      policy: entries.length === 0 ? this.noNames : NamePolicy.of(entries, this.limits),
    };
    this.byKey.set(key, client);
    let addresses = this.byAddress.get(registration.network);
    if (addresses === undefined) this.byAddress.set(registration.network, (addresses = new Map()));
    addresses.set(registration.ip, client);
    return client;
  }

  private remove(client: DnsClient): void {
    this.byKey.delete(client.key);
    const addresses = this.byAddress.get(client.registration.network);
    if (addresses?.get(client.registration.ip) === client) addresses.delete(client.registration.ip);
  }
}

function sameClient(a: DnsClient, b: DnsClient): boolean {
  return (
    a.registration.nicId === b.registration.nicId &&
    a.registration.ip === b.registration.ip &&
    a.registration.vmUuid === b.registration.vmUuid &&
    JSON.stringify(a.entries) === JSON.stringify(b.entries)
  );
}
