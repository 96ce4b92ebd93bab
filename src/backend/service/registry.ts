import { RegistryError } from '../../errors/registry-error.js';
import { SshAccessError } from '../../errors/ssh-access-error.js';
import { StoreError } from '../../errors/store-error.js';
import type { Network, Site } from '../../site/model.js';
import type { NicSsh } from '../nft/ssh.js';
import type { SshForward } from '../nft/types.js';
import { checkNarrowing, nicSources } from '../ssh/sources.js';
import type { Store } from '../store/store.js';
import type {
  AllowEntry,
  DeregisterAnswer,
  MigrationMarker,
  NicBody,
  ReconcileAnswer,
  RegisterAnswer,
  Registration,
  SshForwardAnswer,
  SshMapping,
  VmSshAnswer,
} from '../../protocol/api.js';
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
  /** Its SSH access through the backend, on a network that has it. */
  readonly ssh?: SshMapping;
}

/** The outcome of a deregister call: what the API answers. */
export type DeregisterResult = DeregisterAnswer;

/** A NIC a reconcile left out, and why (`E_NOT_PLACED`, `E_QUOTA_EXCEEDED`). */
export type RefusedNic = ReconcileAnswer['refused'][number];

/** The outcome of a reconcile call: what the API answers. */
export type ReconcileResult = ReconcileAnswer;

/** The outcome of a placement change. */
export interface PlacementResult {
  readonly vmUuid: string;
  readonly hosts: readonly string[];
  /** Registrations of hosts no longer in the placement, removed (revoked). */
  readonly revoked: readonly Registration[];
  /** Registrations of hosts no longer in the placement handed to their (placed) incoming host instead. */
  readonly moved?: readonly Registration[];
}

/** One audit event: what changed, for whom. */
export interface AuditEvent {
  readonly event:
    | 'register'
    | 'deregister'
    | 'reconcile'
    | 'allow-list'
    | 'placement'
    | 'group'
    | 'expire'
    | 'prune'
    | 'refused'
    | 'guard'
    | 'ssh';
  readonly [key: string]: unknown;
}

/** What else a {@link Registry} runs with. */
export interface RegistryOptions {
  /** The audit trail: one call per change. */
  readonly audit?: (event: AuditEvent) => void;
  /** The clock, in ms (tests move it). Default `Date.now`. */
  readonly now?: () => number;
  /**
   * The TCP ports other programs listen on in the backend's namespace: SSH
   * ports skip them. Default: none (the daemon reads the kernel's).
   */
  readonly listeningPorts?: () => Promise<ReadonlySet<number>>;
}

const NONE: ReadonlySet<number> = new Set();

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
 *
 * Live migration (a register with the `incoming` marker, from the
 * destination's hook): a NIC another host holds is not taken over; the sender
 * is recorded as its incoming host, nothing is enforced (the firewall keys on
 * the NIC id, which stays). The holder's deregistration (its late `stopped`),
 * its reconcile without the NIC, its expiry, or a placement without it hands
 * the NIC to the incoming host instead of removing it: same NIC id, address
 * and SSH port, nothing revoked. The incoming host's own deregistration (a
 * failed or cancelled migration), its reconcile without the NIC, or a
 * placement without it withdraws the record: the holder keeps everything. A
 * marked register passes the same placement check as any other.
 *
 * Trust rules: on a network whose placement is `enforced`, a host registers
 * only NICs of VMs the launcher placed on it; only an edge register (never a
 * reconcile) takes a registration over from another host; a VM removed from
 * a host's placement loses that host's registrations; a host that has not
 * reconciled for `expireAfter` loses all of its registrations; a host holds
 * at most `perHost` registrations and a VM at most `perVm` NICs.
 */
export class Registry {
  private readonly queue = new SerialQueue();
  private readonly lastReconcile = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  private readonly audit: (event: AuditEvent) => void;
  private readonly now: () => number;
  private readonly listeningPorts: () => Promise<ReadonlySet<number>>;
  private startedAt = 0;

  constructor(
    private readonly site: Site,
    private readonly store: Store,
    private readonly enforcer: Enforcer,
    options: RegistryOptions | ((event: AuditEvent) => void) = {},
  ) {
    const resolved = typeof options === 'function' ? { audit: options } : options;
    this.audit = resolved.audit ?? (() => {});
    this.now = resolved.now ?? Date.now;
    this.listeningPorts = resolved.listeningPorts ?? (async () => NONE);
  }

  /** Make kernel and dnsmasq equal to the store. Call once at start. */
  async start(): Promise<void> {
    this.startedAt = this.now();
    await this.rebuild();
  }

  /**
   * Make kernel and dnsmasq equal to the store again, in the serial queue;
   * with `firewallOnly`, only the firewall (after the table was lost).
   */
  rebuild(options: { readonly firewallOnly?: boolean } = {}): Promise<void> {
    return this.queue.run(async () => {
      const registrations = this.store.registrations.list();
      const allowLists = this.store.allowLists.list();
      const ssh = await this.convergeSshPorts(registrations);
      const state = { registrations, allowLists, ssh };
      if (options.firewallOnly === true && this.enforcer.rebuildFirewall) await this.enforcer.rebuildFirewall(state);
      else await this.enforcer.rebuild(state);
      this.counts.clear();
      for (const r of registrations) this.counts.set(r.network, (this.counts.get(r.network) ?? 0) + 1);
    });
  }

  /** Run `task` in the serial queue: no change runs while it does. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(task);
  }

  /**
   * Register a NIC for `hostId`; reserves (or reuses) its address. With the
   * `incoming` migration marker, a NIC another host holds is not taken over:
   * `hostId` is recorded as its incoming host (status `incoming`).
   */
  register(hostId: string, nic: NicReport, generation: number, migration?: MigrationMarker): Promise<RegisterResult> {
    return this.queue.run(async () => {
      const network = this.network(nic.network);
      this.requirePlaced(network, nic.vmUuid, hostId);
      const existing = this.store.registrations.get(nic.network, nic.mac);
      if (existing && existing.vmUuid !== nic.vmUuid) throw this.conflict(nic, existing);
      if (existing && existing.hostId === hostId && existing.generation > generation) {
        return { status: 'stale', registration: existing, ...this.mappingOf(existing) };
      }
      if ((this.store.deregistrations.latest(nic.network, nic.mac, hostId) ?? -1) > generation) {
        return existing
          ? { status: 'stale', registration: existing, ...this.mappingOf(existing) }
          : { status: 'stale' };
      }
      if (existing && existing.hostId === hostId && existing.vmName === nic.vmName) {
        if (existing.generation !== generation) this.store.registrations.put({ ...existing, generation });
        return { status: 'unchanged', registration: { ...existing, generation }, ...this.mappingOf(existing) };
      }
      if (existing && existing.hostId !== hostId && migration === 'incoming') {
        return this.recordIncoming(hostId, existing, generation);
      }
      const quota = this.quotaProblem(hostId, nic.vmUuid, existing, 0);
      if (quota !== undefined) throw new RegistryError('E_QUOTA_EXCEEDED', quota);
      const listening = await this.listeningFor([nic]);
      const { added } = await this.commit(existing ? [existing] : [], listening, (txn) => {
        const ip = this.store.addresses.allocate(network, nic.mac);
        // The holder renaming its VM keeps a migration under way; a takeover ends it.
        const incoming = existing?.hostId === hostId ? incomingOf(existing) : {};
        txn.put({
          ...nic,
          hostId,
          ip,
          generation,
          nicId: existing?.nicId ?? this.store.registrations.allocateNicId(),
          ...incoming,
        });
      });
      const registration = added[0];
      if (!registration) {
        throw new StoreError(
          'E_STORE',
          `The store holds no registration of ${nic.mac} on ${network.name} after storing it`,
        );
      }
      this.audit({
        event: 'register',
        hostId,
        ...pick(registration),
        took: existing ? 'over' : 'new',
        ...(existing && existing.hostId !== hostId ? { from: existing.hostId } : {}),
      });
      return { status: 'registered', registration, ...this.mappingOf(registration) };
    });
  }

  /**
   * Deregister a NIC for `hostId`, if it holds it and the generation is not
   * older. Only then is a tombstone kept (so a late, older register of this
   * host's stays out); a NIC it does not hold changes nothing.
   */
  deregister(hostId: string, key: { network: string; mac: string }, generation: number): Promise<DeregisterResult> {
    return this.queue.run(async () => {
      this.network(key.network);
      const existing = this.store.registrations.get(key.network, key.mac);
      if (!existing) return { status: 'absent' };
      if (existing.hostId !== hostId) {
        if (existing.incomingHost === hostId) {
          // The destination of a migration that did not complete stopped its QEMU: the holder keeps everything.
          if ((existing.incomingGeneration ?? 0) > generation) return { status: 'kept-newer' };
          this.store.transaction(() => {
            this.store.registrations.put(withoutIncoming(existing));
            this.store.deregistrations.record(key.network, key.mac, hostId, generation, this.now());
          });
          this.audit({ event: 'deregister', hostId, outcome: 'withdrawn', holder: existing.hostId, ...pick(existing) });
          return { status: 'withdrawn' };
        }
        this.audit({ event: 'deregister', hostId, outcome: 'kept-other-host', holder: existing.hostId, ...key });
        return { status: 'kept-other-host' };
      }
      if (existing.generation > generation) return { status: 'kept-newer' };
      if (this.canHandOver(existing)) {
        // The source's late stop after a live migration: the NIC is the destination's now, nothing is revoked.
        const moved = handedOver(existing);
        await this.commit([existing], NONE, (txn) => {
          txn.put(moved);
          this.store.deregistrations.record(key.network, key.mac, hostId, generation, this.now());
        });
        this.audit({ event: 'deregister', hostId, outcome: 'moved', to: moved.hostId, ...pick(moved) });
        return { status: 'moved' };
      }
      await this.commit([existing], NONE, (txn) => {
        txn.delete(existing);
        this.store.deregistrations.record(key.network, key.mac, hostId, generation, this.now());
      });
      this.audit({ event: 'deregister', hostId, ...pick(existing) });
      return { status: 'removed' };
    });
  }

  /**
   * Converge a host's registrations to the NICs it says it runs now: add the
   * missing, remove what it no longer runs (unless newer than `generation`),
   * in one transaction. NICs of VMs not placed on the host (on enforced
   * networks), beyond a cap, or held by another host are left out and reported.
   */
  reconcile(hostId: string, nics: readonly NicReport[], generation: number): Promise<ReconcileResult> {
    return this.queue.run(async () => {
      for (const nic of nics) this.network(nic.network);
      this.lastReconcile.set(hostId, this.now());
      const key = (n: { network: string; mac: string }) => `${n.network}/${n.mac}`;
      const held = new Map(this.store.registrations.ofHost(hostId).map((r) => [key(r), r]));
      const wanted = new Map(nics.map((n) => [key(n), n]));
      const conflicts: NicReport[] = [];
      const refused: RefusedNic[] = [];
      const heldElsewhere: NicReport[] = [];
      const touched: Registration[] = [];
      const toAdd: NicReport[] = [];
      let newForHost = 0;
      const newForVm = new Map<string, number>();
      for (const nic of wanted.values()) {
        const existing = this.store.registrations.get(nic.network, nic.mac);
        // A deregistration newer than this snapshot of the host wins: the NIC stopped after the list was taken.
        if ((this.store.deregistrations.latest(nic.network, nic.mac, hostId) ?? -1) > generation) continue;
        if (existing && existing.vmUuid !== nic.vmUuid) conflicts.push(nic);
        else if (!this.isPlaced(this.network(nic.network), nic.vmUuid, hostId))
          refused.push({ ...nic, code: 'E_NOT_PLACED' });
        else if (existing && existing.hostId !== hostId) heldElsewhere.push(nic);
        else if (!existing) {
          const vmAdds = newForVm.get(nic.vmUuid) ?? 0;
          if (this.quotaProblem(hostId, nic.vmUuid, undefined, newForHost, vmAdds) !== undefined) {
            refused.push({ ...nic, code: 'E_QUOTA_EXCEEDED' });
            continue;
          }
          newForHost += 1;
          newForVm.set(nic.vmUuid, vmAdds + 1);
          toAdd.push(nic);
        } else if (existing.vmName !== nic.vmName) {
          touched.push(existing);
          toAdd.push(nic);
        }
      }
      const gone = [...held.values()].filter((r) => !wanted.has(key(r)) && r.generation <= generation);
      // A NIC the host no longer runs while a migration's incoming host waits: the VM moved, hand it over.
      const toMove = gone.filter((r) => this.canHandOver(r));
      const toRemove = gone.filter((r) => !toMove.includes(r));
      // A migration to this host that it does not run (any more): it failed, the holder keeps the NIC.
      const toWithdraw = this.store.registrations
        .incomingOf(hostId)
        .filter((r) => !wanted.has(key(r)) && (r.incomingGeneration ?? 0) <= generation);
      const outcome = { conflicts, refused, heldElsewhere };
      if (toAdd.length === 0 && toRemove.length === 0 && toMove.length === 0) {
        if (toWithdraw.length > 0) this.withdrawIncoming(toWithdraw, 'reconcile');
        if (refused.length + heldElsewhere.length > 0) this.auditReconcile(hostId, [], [], outcome);
        return { added: [], removed: [], ...outcome };
      }
      const ids = new Map(touched.map((r) => [key(r), r.nicId]));
      const listening = await this.listeningFor(toAdd);
      const { added } = await this.commit([...touched, ...toRemove, ...toMove], listening, (txn) => {
        for (const registration of toRemove) txn.delete(registration);
        for (const registration of toMove) txn.put(handedOver(registration));
        for (const registration of toWithdraw) this.store.registrations.put(withoutIncoming(registration));
        for (const nic of toAdd) {
          // A NIC its network's SSH access has no port for is left out, alone (before anything is written for it).
          try {
            this.ensurePort(nic, listening);
          } catch (error) {
            if (!(error instanceof SshAccessError)) throw error;
            refused.push({ ...nic, code: error.code === 'E_SSH_PORT_IN_USE' ? error.code : 'E_SSH_PORTS_EXHAUSTED' });
            continue;
          }
          txn.put({
            ...nic,
            hostId,
            generation,
            ip: this.store.addresses.allocate(this.network(nic.network), nic.mac),
            nicId: ids.get(key(nic)) ?? this.store.registrations.allocateNicId(),
          });
        }
      });
      const moved = new Set(toMove.map(key));
      this.auditReconcile(hostId, added, toRemove, outcome, toMove, toWithdraw);
      return { added: added.filter((r) => !moved.has(key(r))), removed: toRemove, ...outcome };
    });
  }

  /**
   * Set where a VM may run (the VM launcher, at start and around a
   * migration). On networks that enforce placement, registrations held by a
   * host no longer in `hosts` are removed (revoked) in the same transaction.
   */
  setPlacement(vmUuid: string, hosts: readonly string[], actor: string): Promise<PlacementResult> {
    return this.queue.run(async () => {
      const before = this.store.placements.get(vmUuid);
      const after = [...new Set(hosts)];
      const enforced = this.store.registrations
        .ofVm(vmUuid)
        .filter((r) => this.network(r.network).placement === 'enforced');
      // A migration's incoming host no longer placed: its record goes (the holder keeps the NIC).
      const withdraw = enforced.filter((r) => r.incomingHost !== undefined && !after.includes(r.incomingHost));
      const left = enforced.filter((r) => !after.includes(r.hostId));
      // The holder left out while its placed incoming host waits: the launcher moved the VM, hand it over.
      const move = left.filter((r) => r.incomingHost !== undefined && after.includes(r.incomingHost));
      const revoke = left.filter((r) => !move.includes(r));
      const stayWithdrawn = withdraw.filter((r) => !left.includes(r));
      if (revoke.length === 0 && move.length === 0) {
        this.store.transaction(() => {
          for (const registration of stayWithdrawn) this.store.registrations.put(withoutIncoming(registration));
          this.store.placements.set(vmUuid, after);
        });
      } else {
        await this.commit([...revoke, ...move], NONE, (txn) => {
          for (const registration of revoke) txn.delete(registration);
          for (const registration of move) txn.put(handedOver(registration));
          for (const registration of stayWithdrawn) this.store.registrations.put(withoutIncoming(registration));
          this.store.placements.set(vmUuid, after);
        });
      }
      this.audit({
        event: 'placement',
        actor,
        vmUuid,
        before,
        after,
        revoked: revoke.map(pick),
        ...(move.length > 0 ? { moved: move.map((r) => ({ ...pick(r), to: r.incomingHost })) } : {}),
        ...(withdraw.length > 0 ? { withdrawn: withdraw.map((r) => ({ ...pick(r), incoming: r.incomingHost })) } : {}),
      });
      return { vmUuid, hosts: after, revoked: revoke, ...(move.length > 0 ? { moved: move.map(handedOver) } : {}) };
    });
  }

  /** The hosts a VM is placed on (empty: nowhere). */
  placement(vmUuid: string): string[] {
    return this.store.placements.get(vmUuid);
  }

  /**
   * Periodic upkeep: remove the registrations of every host that has not
   * reconciled for `expireAfter` (not before `expireGrace` after start), and
   * forget tombstones older than `tombstoneRetention`. Returns the hosts
   * expired and how many registrations they lost.
   */
  sweep(): Promise<{ hosts: string[]; removed: number }> {
    return this.queue.run(async () => {
      const now = this.now();
      const limits = this.site.backend.registrations;
      const pruned = this.store.deregistrations.pruneBefore(now - limits.tombstoneRetention);
      if (pruned > 0) this.audit({ event: 'prune', tombstones: pruned });
      if (now < this.startedAt + limits.expireGrace) return { hosts: [], removed: 0 };
      const expired: string[] = [];
      let removed = 0;
      for (const hostId of this.store.registrations.countByHost().keys()) {
        const last = Math.max(this.lastReconcile.get(hostId) ?? 0, this.startedAt);
        if (now - last <= limits.expireAfter) continue;
        const all = this.store.registrations.ofHost(hostId);
        // A NIC a live migration's incoming host waits for goes to it (the VM left the silent host, or will).
        const move = all.filter((r) => this.canHandOver(r));
        const held = all.filter((r) => !move.includes(r));
        const withdraw = this.store.registrations.incomingOf(hostId);
        await this.commit(all, NONE, (txn) => {
          for (const registration of held) txn.delete(registration);
          for (const registration of move) txn.put(handedOver(registration));
          for (const registration of withdraw) this.store.registrations.put(withoutIncoming(registration));
        });
        expired.push(hostId);
        removed += held.length;
        this.audit({
          event: 'expire',
          hostId,
          lastReconcile: this.lastReconcile.has(hostId) ? new Date(last).toISOString() : 'never since start',
          removed: held.map(pick),
          ...(move.length > 0 ? { moved: move.map((r) => ({ ...pick(r), to: r.incomingHost })) } : {}),
          ...(withdraw.length > 0 ? { withdrawn: withdraw.map(pick) } : {}),
        });
      }
      return { hosts: expired, removed };
    });
  }

  /** Replace a VM's allow-list; its registered NICs' firewall elements follow in one transaction. */
  setAllowList(vmUuid: string, entries: readonly AllowEntry[], actor: string): Promise<void> {
    return this.queue.run(async () => {
      const before = this.store.allowLists.get(vmUuid);
      const nics = this.store.registrations.ofVm(vmUuid);
      this.store.db.exec('BEGIN IMMEDIATE');
      try {
        this.store.allowLists.set(vmUuid, entries);
        await this.enforcer.change({
          before: nics.map((registration) => ({ ...this.view(registration), entries: before })),
          after: nics.map((registration) => ({ ...this.view(registration), entries })),
        });
        this.store.db.exec('COMMIT');
      } catch (error) {
        this.store.db.exec('ROLLBACK');
        throw error;
      }
      this.audit({ event: 'allow-list', actor, vmUuid, before, after: entries, nics: nics.length });
    });
  }

  /** A VM's allow-list (empty: no egress). */
  allowList(vmUuid: string): AllowEntry[] {
    return this.store.allowLists.get(vmUuid);
  }

  /**
   * Narrow a VM's SSH access to `sources` (client networks; empty: no client),
   * or (`undefined`) give it each network's site sources again; its
   * registered NICs' firewall elements follow in one transaction, and
   * connections from client networks it lost are ended.
   *
   * @throws {SshAccessError} `E_SSH_SOURCES_OUTSIDE` when a source lies outside what the site allows.
   */
  setSshSources(vmUuid: string, sources: readonly string[] | undefined, actor: string): Promise<VmSshAnswer> {
    return this.queue.run(async () => {
      if (sources !== undefined) checkNarrowing(this.site, sources);
      const before = this.store.sshSources.get(vmUuid);
      const nics = this.store.registrations.ofVm(vmUuid);
      const viewsBefore = nics.map((r) => this.view(r));
      this.store.db.exec('BEGIN IMMEDIATE');
      try {
        this.store.sshSources.set(vmUuid, sources);
        await this.enforcer.change({ before: viewsBefore, after: nics.map((r) => this.view(r)) });
        this.store.db.exec('COMMIT');
      } catch (error) {
        if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
        throw error;
      }
      this.audit({ event: 'ssh', actor, vmUuid, sourcesBefore: before ?? 'site', sourcesAfter: sources ?? 'site' });
      return this.vmSsh(vmUuid);
    });
  }

  /** A VM's SSH access: its narrowed sources (`null`: the site's) and its NICs' forwards. */
  vmSsh(vmUuid: string): VmSshAnswer {
    return {
      vmUuid,
      sources: this.store.sshSources.get(vmUuid) ?? null,
      forwards: this.sshForwards({ vmUuid }),
    };
  }

  /** The SSH forwards of registered NICs: every one, a VM's, or one host's registrations'. */
  sshForwards(filter: { readonly vmUuid?: string; readonly hostId?: string } = {}): SshForwardAnswer[] {
    const registrations =
      filter.vmUuid !== undefined
        ? this.store.registrations.ofVm(filter.vmUuid)
        : filter.hostId !== undefined
          ? this.store.registrations.ofHost(filter.hostId)
          : this.store.registrations.list();
    return registrations.flatMap((r) => {
      const ssh = this.nicSsh(r);
      const mapping = this.mappingOf(r).ssh;
      if (ssh === undefined || mapping === undefined) return [];
      return [
        {
          vmUuid: r.vmUuid,
          vmName: r.vmName,
          network: r.network,
          mac: r.mac,
          ip: r.ip,
          ...mapping,
          sources: ssh.sources,
          narrowed: ssh.narrowed,
        },
      ];
    });
  }

  /**
   * Every registration, or one host's: those it holds and those it is a live
   * migration's incoming host of (its port of the VM runs, and is pinned, before
   * the hand-over: its flow sync must find the NIC's address).
   */
  registrations(hostId?: string): Registration[] {
    if (hostId === undefined) return this.store.registrations.list();
    const incoming = this.store.registrations.incomingOf(hostId);
    const held = this.store.registrations.ofHost(hostId);
    if (incoming.length === 0) return held;
    const order = (r: Registration) => `${r.network}\0${r.mac}`;
    return [...held, ...incoming].sort((x, y) => (order(x) < order(y) ? -1 : 1));
  }

  /** Registered NICs per network, kept in memory (no store read). */
  registrationCounts(): ReadonlyMap<string, number> {
    return this.counts;
  }

  /**
   * Run one change: `mutate` writes the store (inside BEGIN IMMEDIATE), then
   * the NICs `before` (as stored before) and after (as stored after, for the
   * same and any newly put keys) are enforced, then it commits. On any failure
   * the store is rolled back and the error rethrown.
   */
  private async commit(
    before: readonly Registration[],
    listening: ReadonlySet<number>,
    mutate: (txn: { put(r: Registration): void; delete(r: Registration): void }) => void,
  ): Promise<{ added: Registration[] }> {
    const db = this.store.db;
    const added: Registration[] = [];
    const removed: Registration[] = [];
    // As enforced now: the ports the NICs hold before the change.
    const viewsBefore = before.map((r) => this.view(r));
    db.exec('BEGIN IMMEDIATE');
    try {
      const now = this.now();
      mutate({
        put: (r) => {
          this.ensurePort(r, listening);
          this.store.registrations.put(r);
          added.push(r);
        },
        delete: (r) => {
          this.store.registrations.delete(r.network, r.mac);
          this.store.sshPorts.release(r.network, r.mac, now);
          removed.push(r);
        },
      });
      await this.enforcer.change({
        before: viewsBefore,
        after: added.map((r) => this.view(r)),
      });
      db.exec('COMMIT');
      for (const r of before) this.counts.set(r.network, (this.counts.get(r.network) ?? 0) - 1);
      for (const r of added) this.counts.set(r.network, (this.counts.get(r.network) ?? 0) + 1);
      return { added };
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  /** What the firewall enforces for a registered NIC: its VM's allow entries and its SSH access. */
  private view(stored: Registration): NicView {
    // What the firewall holds of a NIC does not change while a migration is under way.
    const registration = withoutIncoming(stored);
    const ssh = this.nicSsh(registration);
    return { registration, entries: this.store.allowLists.get(registration.vmUuid), ...(ssh ? { ssh } : {}) };
  }

  /** A registered NIC's SSH access: the port it holds and the client networks that may use it. */
  private nicSsh(registration: Registration): NicSsh | undefined {
    const access = this.site.networks.find((n) => n.name === registration.network)?.ssh;
    const port = access && this.store.sshPorts.held(registration.network, registration.mac);
    if (access === undefined || port === undefined) return undefined;
    return { port, ...nicSources(access, this.store.sshSources.get(registration.vmUuid)) };
  }

  /** `{ ssh: { port, address? } }` for a NIC with SSH access, `{}` otherwise. */
  private mappingOf(registration: Registration): { ssh?: SshMapping } {
    const access = this.site.networks.find((n) => n.name === registration.network)?.ssh;
    const port = access && this.store.sshPorts.held(registration.network, registration.mac);
    if (access === undefined || port === undefined) return {};
    return { ssh: { port, ...(access.address === undefined ? {} : { address: access.address }) } };
  }

  /** Whether a NIC needs a port it does not hold (on a network with SSH access, none in its range). */
  private needsPort(nic: { readonly network: string; readonly mac: string }): boolean {
    const access = this.network(nic.network).ssh;
    if (access === undefined) return false;
    const held = this.store.sshPorts.held(nic.network, nic.mac);
    return held === undefined || held < access.ports.from || held > access.ports.to;
  }

  /** The ports other programs listen on, read only when one of `nics` needs a port. */
  private async listeningFor(nics: readonly { network: string; mac: string }[]): Promise<ReadonlySet<number>> {
    return nics.some((n) => this.needsPort(n)) ? this.listeningPorts() : NONE;
  }

  /**
   * Inside a change's transaction: a NIC put on a network with SSH access
   * holds a port (the one it holds, else a new one skipping `listening`).
   *
   * @throws {SshAccessError} when there is none for it; nothing is written then.
   */
  private ensurePort(
    nic: { readonly network: string; readonly mac: string; readonly vmUuid: string },
    listening: ReadonlySet<number>,
  ): void {
    const network = this.network(nic.network);
    if (network.ssh === undefined || !this.needsPort(nic)) return;
    this.store.sshPorts.allocate({ ...network, ssh: network.ssh }, nic, this.now(), (p) => listening.has(p));
  }

  /**
   * At a rebuild: every registered NIC on a network with SSH access holds a
   * port of its range (the site may have turned access on or moved the
   * range), no other NIC holds one; the forwards to enforce. A NIC that
   * cannot get one is audited and left without SSH access.
   */
  private async convergeSshPorts(registrations: readonly Registration[]): Promise<SshForward[]> {
    const now = this.now();
    const listening = this.site.networks.some((n) => n.ssh) ? await this.listeningPorts() : NONE;
    this.store.transaction(() => {
      for (const r of registrations) {
        const network = this.site.networks.find((n) => n.name === r.network);
        if (network?.ssh === undefined) {
          this.store.sshPorts.release(r.network, r.mac, now);
          continue;
        }
        const held = this.store.sshPorts.held(r.network, r.mac);
        if (held !== undefined && listening.has(held)) {
          // Kept (the port is the NIC's), but clients of that other program on the SSH address reach the VM instead.
          this.audit({ event: 'ssh', outcome: 'port-in-use', network: r.network, mac: r.mac, port: held });
        }
        try {
          this.store.sshPorts.allocate({ ...network, ssh: network.ssh }, r, now, (p) => listening.has(p));
        } catch (error) {
          if (!(error instanceof SshAccessError)) throw error;
          this.audit({ event: 'ssh', outcome: 'no-port', network: r.network, mac: r.mac, detail: error.message });
        }
      }
    });
    return registrations.flatMap((r) => {
      const ssh = this.nicSsh(r);
      return ssh ? [{ network: r.network, mac: r.mac, ...ssh }] : [];
    });
  }

  /**
   * Why one more registration would exceed a cap, if it would: the host's
   * (`perHost`, unless it takes over a NIC it already counts) or the VM's
   * (`perVm`, for a NIC not yet registered). `pending*` count additions of
   * the same reconcile not stored yet.
   */
  private quotaProblem(
    hostId: string,
    vmUuid: string,
    existing: Registration | undefined,
    pendingForHost: number,
    pendingForVm = 0,
  ): string | undefined {
    const limits = this.site.backend.registrations;
    const hostHolds = this.store.registrations.countOfHost(hostId) + pendingForHost;
    if (existing?.hostId !== hostId && hostHolds >= limits.perHost) {
      return `Host ${hostId} holds ${hostHolds} registrations: expected fewer than backend.registrations.perHost (${limits.perHost})`;
    }
    const vmHas = this.store.registrations.countOfVm(vmUuid) + pendingForVm;
    if (existing === undefined && vmHas >= limits.perVm) {
      return `VM ${vmUuid} has ${vmHas} registered NICs: expected fewer than backend.registrations.perVm (${limits.perVm})`;
    }
    return undefined;
  }

  /**
   * A register with the `incoming` marker for a NIC `existing.hostId` holds:
   * record `hostId` as its incoming host (store only: the firewall keys on the
   * NIC id, which stays). Called in the serial queue, placement checked.
   */
  private recordIncoming(hostId: string, existing: Registration, generation: number): RegisterResult {
    if (existing.incomingHost === hostId && (existing.incomingGeneration ?? 0) > generation) {
      return { status: 'stale', registration: existing, ...this.mappingOf(existing) };
    }
    if (existing.incomingHost !== hostId) {
      const quota = this.quotaProblem(hostId, existing.vmUuid, existing, 0);
      if (quota !== undefined) throw new RegistryError('E_QUOTA_EXCEEDED', quota);
    }
    const recorded: Registration = { ...existing, incomingHost: hostId, incomingGeneration: generation };
    if (existing.incomingHost !== hostId || existing.incomingGeneration !== generation) {
      this.store.transaction(() => this.store.registrations.put(recorded));
    }
    if (existing.incomingHost !== hostId) {
      this.audit({
        event: 'register',
        hostId,
        ...pick(existing),
        took: 'incoming',
        holder: existing.hostId,
        ...(existing.incomingHost === undefined ? {} : { replaced: existing.incomingHost }),
        incomingGeneration: generation,
      });
    }
    return { status: 'incoming', registration: recorded, ...this.mappingOf(recorded) };
  }

  /** Whether a registration has an incoming host that may take it (placed, on an enforced network). */
  private canHandOver(registration: Registration): boolean {
    const to = registration.incomingHost;
    return to !== undefined && this.isPlaced(this.network(registration.network), registration.vmUuid, to);
  }

  /** Drop the incoming-host records of `registrations` (store only, one transaction). */
  private withdrawIncoming(registrations: readonly Registration[], cause: string): void {
    this.store.transaction(() => {
      for (const registration of registrations) this.store.registrations.put(withoutIncoming(registration));
    });
    for (const r of registrations) {
      this.audit({
        event: 'deregister',
        hostId: r.incomingHost,
        outcome: 'withdrawn',
        cause,
        holder: r.hostId,
        ...pick(r),
      });
    }
  }

  private isPlaced(network: Network, vmUuid: string, hostId: string): boolean {
    return network.placement !== 'enforced' || this.store.placements.get(vmUuid).includes(hostId);
  }

  private requirePlaced(network: Network, vmUuid: string, hostId: string): void {
    if (this.isPlaced(network, vmUuid, hostId)) return;
    const hosts = this.store.placements.get(vmUuid);
    throw new RegistryError(
      'E_NOT_PLACED',
      `VM ${vmUuid} is not placed on host ${hostId}: network ${network.name} enforces placement, and the VM launcher placed it on ${hosts.length === 0 ? 'no host' : hosts.join(', ')}`,
    );
  }

  private auditReconcile(
    hostId: string,
    added: readonly Registration[],
    removed: readonly Registration[],
    outcome: { conflicts: readonly NicReport[]; refused: readonly RefusedNic[]; heldElsewhere: readonly NicReport[] },
    moved: readonly Registration[] = [],
    withdrawn: readonly Registration[] = [],
  ): void {
    const movedKeys = new Set(moved.map((r) => `${r.network}/${r.mac}`));
    this.audit({
      event: 'reconcile',
      hostId,
      added: added.filter((r) => !movedKeys.has(`${r.network}/${r.mac}`)).map(pick),
      removed: removed.map(pick),
      ...(moved.length > 0 ? { moved: moved.map((r) => ({ ...pick(r), to: r.incomingHost })) } : {}),
      ...(withdrawn.length > 0 ? { withdrawn: withdrawn.map(pick) } : {}),
      conflicts: outcome.conflicts.length,
      refused: outcome.refused.map((n) => ({ vmUuid: n.vmUuid, mac: n.mac, network: n.network, code: n.code })),
      heldElsewhere: outcome.heldElsewhere.map((n) => ({ vmUuid: n.vmUuid, mac: n.mac, network: n.network })),
    });
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

/** The registration with no migration under way. */
function withoutIncoming(r: Registration): Registration {
  if (r.incomingHost === undefined && r.incomingGeneration === undefined) return r;
  const rest: { -readonly [K in keyof Registration]?: Registration[K] } = { ...r };
  delete rest.incomingHost;
  delete rest.incomingGeneration;
  return rest as Registration;
}

/** Its incoming-host fields, to keep them across a change of the holder's own registration. */
function incomingOf(r: Registration): Pick<Registration, 'incomingHost' | 'incomingGeneration'> {
  return r.incomingHost === undefined
    ? {}
    : { incomingHost: r.incomingHost, incomingGeneration: r.incomingGeneration ?? 0 };
}

/** The registration handed to its incoming host: same NIC id, address and SSH port; the incoming generation. */
function handedOver(r: Registration): Registration {
  return {
    ...withoutIncoming(r),
    hostId: r.incomingHost ?? r.hostId,
    generation: r.incomingGeneration ?? r.generation,
  };
}

function pick(r: Registration) {
  return {
    vmUuid: r.vmUuid,
    vmName: r.vmName,
    mac: r.mac,
    network: r.network,
    ip: r.ip,
    generation: r.generation,
    nicId: r.nicId,
  };
}
