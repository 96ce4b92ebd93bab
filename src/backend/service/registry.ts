import { RegistryError } from '../../errors/registry-error.js';
import { StoreError } from '../../errors/store-error.js';
import type { Network, Site } from '../../site/model.js';
import type { Store } from '../store/store.js';
import type {
  AllowEntry,
  DeregisterAnswer,
  NicBody,
  ReconcileAnswer,
  RegisterAnswer,
  Registration,
} from '../../protocol/api.js';
import { DomainIndex } from './domain-index.js';
import type { Enforcer, NicView } from './enforcer.js';
import { SerialQueue } from './serial.js';

/** A NIC as a host reports it (the wire's {@link NicBody}). */
export type NicReport = NicBody;

/** The outcome of a register call. */
export interface RegisterResult {
  /** See {@link RegisterAnswer}'s `status`. */
  readonly status: RegisterAnswer['status'];
  /** The NIC's registration after the call (absent when a stale register found none). */
  readonly registration?: Registration;
}

/** The outcome of a deregister call: what the API answers. */
export type DeregisterResult = DeregisterAnswer;

/** The outcome of a reconcile call: what the API answers. */
export type ReconcileResult = ReconcileAnswer;

/** One audit event: what changed, for whom. */
export interface AuditEvent {
  readonly event: 'register' | 'deregister' | 'reconcile' | 'allow-list';
  readonly [key: string]: unknown;
}

/**
 * The backend's decisions about who is on which network. Every change is
 * serialized, written to the store inside a transaction, enforced (nftables,
 * dnsmasq) before the transaction commits, and rolled back when enforcement
 * fails; so store and kernel agree after every call, and after a crash the
 * rebuild from the store makes them agree again.
 *
 * Ordering rules: the same registration twice is one; an older generation
 * from the same host never overrides a newer one; a host may only remove
 * what it holds, so the source's stop after a migration leaves the
 * destination's registration in place; a MAC held by another VM is refused.
 */
export class Registry {
  private readonly queue = new SerialQueue();
  private readonly domains = new DomainIndex();

  constructor(
    private readonly site: Site,
    private readonly store: Store,
    private readonly enforcer: Enforcer,
    private readonly audit: (event: AuditEvent) => void = () => {},
  ) {}

  /** Build the domain index and make kernel and dnsmasq equal to the store. Call once at start. */
  async start(): Promise<void> {
    await this.queue.run(async () => {
      const registrations = this.store.registrations.list();
      const allowLists = this.store.allowLists.list();
      const registered = new Set(registrations.map((r) => r.vmUuid));
      let index = new DomainIndex();
      for (const list of allowLists) if (registered.has(list.vmUuid)) index = index.with([], list.entries);
      this.domains.adopt(index);
      await this.enforcer.rebuild({ registrations, allowLists, domains: index.list() });
    });
  }

  /** Register a NIC for `hostId`; reserves (or reuses) its address. */
  register(hostId: string, nic: NicReport, generation: number): Promise<RegisterResult> {
    return this.queue.run(async () => {
      const network = this.network(nic.network);
      const existing = this.store.registrations.get(nic.network, nic.mac);
      if (existing && existing.vmUuid !== nic.vmUuid) throw this.conflict(nic, existing);
      if (existing && existing.hostId === hostId && existing.generation > generation) {
        return { status: 'stale', registration: existing };
      }
      if ((this.store.deregistrations.latest(nic.network, nic.mac, hostId) ?? -1) > generation) {
        return existing ? { status: 'stale', registration: existing } : { status: 'stale' };
      }
      if (existing && existing.hostId === hostId && existing.vmName === nic.vmName) {
        if (existing.generation !== generation) this.store.registrations.put({ ...existing, generation });
        return { status: 'unchanged', registration: { ...existing, generation } };
      }
      const { added } = await this.commit(existing ? [existing] : [], (txn) => {
        const ip = this.store.addresses.allocate(network, nic.mac);
        txn.put({ ...nic, hostId, ip, generation });
      });
      const registration = added[0];
      if (!registration) {
        throw new StoreError(
          'E_STORE',
          `The store holds no registration of ${nic.mac} on ${network.name} after storing it`,
        );
      }
      this.audit({ event: 'register', hostId, ...pick(registration), took: existing ? 'over' : 'new' });
      return { status: 'registered', registration };
    });
  }

  /** Deregister a NIC for `hostId`, if it holds it and the generation is not older. */
  deregister(hostId: string, key: { network: string; mac: string }, generation: number): Promise<DeregisterResult> {
    return this.queue.run(async () => {
      this.network(key.network);
      const existing = this.store.registrations.get(key.network, key.mac);
      // Remembered even when nothing is removed: a register of this host's that arrives later but is older stays out.
      const remember = () => this.store.deregistrations.record(key.network, key.mac, hostId, generation);
      if (!existing || existing.hostId !== hostId) {
        remember();
        return { status: existing ? 'kept-other-host' : 'absent' };
      }
      if (existing.generation > generation) return { status: 'kept-newer' };
      await this.commit([existing], (txn) => {
        txn.delete(existing);
        remember();
      });
      this.audit({ event: 'deregister', hostId, ...pick(existing) });
      return { status: 'removed' };
    });
  }

  /**
   * Converge a host's registrations to the NICs it says it runs now: add the
   * missing, remove what it no longer runs (unless newer than `generation`),
   * in one transaction.
   */
  reconcile(hostId: string, nics: readonly NicReport[], generation: number): Promise<ReconcileResult> {
    return this.queue.run(async () => {
      for (const nic of nics) this.network(nic.network);
      const key = (n: { network: string; mac: string }) => `${n.network}/${n.mac}`;
      const held = new Map(this.store.registrations.ofHost(hostId).map((r) => [key(r), r]));
      const wanted = new Map(nics.map((n) => [key(n), n]));
      const conflicts: NicReport[] = [];
      const touched: Registration[] = [];
      const toAdd: NicReport[] = [];
      for (const nic of wanted.values()) {
        const existing = this.store.registrations.get(nic.network, nic.mac);
        // A deregistration newer than this snapshot of the host wins: the NIC stopped after the list was taken.
        if ((this.store.deregistrations.latest(nic.network, nic.mac, hostId) ?? -1) > generation) continue;
        if (existing && existing.vmUuid !== nic.vmUuid) conflicts.push(nic);
        else if (!existing || existing.hostId !== hostId || existing.vmName !== nic.vmName) {
          if (existing) touched.push(existing);
          toAdd.push(nic);
        }
      }
      const toRemove = [...held.values()].filter((r) => !wanted.has(key(r)) && r.generation <= generation);
      if (toAdd.length === 0 && toRemove.length === 0) return { added: [], removed: [], conflicts };
      const { added } = await this.commit([...touched, ...toRemove], (txn) => {
        for (const registration of toRemove) txn.delete(registration);
        for (const nic of toAdd) {
          txn.put({
            ...nic,
            hostId,
            generation,
            ip: this.store.addresses.allocate(this.network(nic.network), nic.mac),
          });
        }
      });
      this.audit({
        event: 'reconcile',
        hostId,
        added: added.map(pick),
        removed: toRemove.map(pick),
        conflicts: conflicts.length,
      });
      return { added, removed: toRemove, conflicts };
    });
  }

  /** Replace a VM's allow-list; its registered NICs' firewall elements follow in one transaction. */
  setAllowList(vmUuid: string, entries: readonly AllowEntry[], actor: string): Promise<void> {
    return this.queue.run(async () => {
      const before = this.store.allowLists.get(vmUuid);
      const nics = this.store.registrations.ofVm(vmUuid);
      const next = nics.length > 0 ? this.domains.with(before, entries) : this.domains;
      this.store.db.exec('BEGIN IMMEDIATE');
      try {
        this.store.allowLists.set(vmUuid, entries);
        await this.enforcer.change({
          before: nics.map((registration) => ({ registration, entries: before })),
          after: nics.map((registration) => ({ registration, entries })),
          domains: { before: this.domains.list(), after: next.list() },
        });
        this.store.db.exec('COMMIT');
      } catch (error) {
        this.store.db.exec('ROLLBACK');
        throw error;
      }
      this.domains.adopt(next);
      this.audit({ event: 'allow-list', actor, vmUuid, before, after: entries, nics: nics.length });
    });
  }

  /** A VM's allow-list (empty: no egress). */
  allowList(vmUuid: string): AllowEntry[] {
    return this.store.allowLists.get(vmUuid);
  }

  /** Every registration, or one host's. */
  registrations(hostId?: string): Registration[] {
    return hostId === undefined ? this.store.registrations.list() : this.store.registrations.ofHost(hostId);
  }

  /**
   * Run one change: `mutate` writes the store (inside BEGIN IMMEDIATE), then
   * the NICs `before` (as stored before) and after (as stored after, for the
   * same and any newly put keys) are enforced, then it commits. On any failure
   * the store is rolled back and the error rethrown.
   */
  private async commit(
    before: readonly Registration[],
    mutate: (txn: { put(r: Registration): void; delete(r: Registration): void }) => void,
  ): Promise<{ added: Registration[] }> {
    const db = this.store.db;
    const added: Registration[] = [];
    const removed: Registration[] = [];
    db.exec('BEGIN IMMEDIATE');
    try {
      mutate({
        put: (r) => {
          this.store.registrations.put(r);
          added.push(r);
        },
        delete: (r) => {
          this.store.registrations.delete(r.network, r.mac);
          removed.push(r);
        },
      });
      const vms = new Set([...before, ...added, ...removed].map((r) => r.vmUuid));
      let next = this.domains;
      for (const vm of vms) {
        const entries = this.store.allowLists.get(vm);
        const wasActive = before.some((r) => r.vmUuid === vm) || this.activeBefore(vm, before, added, removed);
        const isActive = this.store.registrations.ofVm(vm).length > 0;
        if (wasActive && !isActive) next = next.with(entries, []);
        if (!wasActive && isActive) next = next.with([], entries);
      }
      const view = (r: Registration): NicView => ({ registration: r, entries: this.store.allowLists.get(r.vmUuid) });
      await this.enforcer.change({
        before: before.map(view),
        after: added.map(view),
        domains: { before: this.domains.list(), after: next.list() },
      });
      db.exec('COMMIT');
      this.domains.adopt(next);
      return { added };
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Whether a VM had registrations before this change (its rows now, minus what the change added, plus what it removed). */
  private activeBefore(
    vm: string,
    before: readonly Registration[],
    added: readonly Registration[],
    removed: readonly Registration[],
  ): boolean {
    const now = this.store.registrations.ofVm(vm).length;
    const addedHere = added.filter(
      (r) => r.vmUuid === vm && !before.some((b) => b.network === r.network && b.mac === r.mac),
    ).length;
    const removedHere = removed.filter((r) => r.vmUuid === vm).length;
    return now - addedHere + removedHere > 0;
  }

  private network(name: string): Network {
    const network = this.site.networks.find((n) => n.name === name);
    if (!network) {
      throw new RegistryError(
        'E_UNKNOWN_NETWORK',
        `Unknown network ${JSON.stringify(name)}: expected one of ${this.site.networks.map((n) => n.name).join(', ')}`,
      );
    }
    return network;
  }

  private conflict(nic: NicReport, existing: Registration): RegistryError {
    return new RegistryError(
      'E_MAC_CONFLICT',
      `MAC ${nic.mac} on network ${nic.network} is registered to VM ${existing.vmUuid}, not ${nic.vmUuid}`,
    );
  }
}

function pick(r: Registration) {
  return { vmUuid: r.vmUuid, vmName: r.vmName, mac: r.mac, network: r.network, ip: r.ip, generation: r.generation };
}
