/**
 * The thin service edge over the pure renderers: render, run nft, then clean
 * up conntrack. The runners are injected, so tests run everything inside a
 * network namespace and production runs it directly.
 */
import { NftError } from '../../errors/nft-error.js';
import type { Site } from '../../site/model.js';
import { eachLimited } from '../each-limited.js';
import { nftRunner, type NftRunner } from './apply.js';
import { conntrackDeletions, conntrackRunner, type ConntrackRunner } from './conntrack.js';
import { revocableIds, renderChange, renderCleanup, renderRevoke, type NicState } from './delta.js';
import { renderRulesetBytes } from './render-worker.js';
import type { GatewayState, RulesetOptions } from './types.js';

/** How many `conntrack -D` run at once after a change. */
const CONNTRACK_CONCURRENCY = 4;

/** How {@link NftGateway} runs its programs. */
export interface NftGatewayOptions {
  /** Default: `nft -f -` in the current namespace. */
  readonly nft?: NftRunner;
  /** Default: `conntrack -D ...` in the current namespace. */
  readonly conntrack?: ConntrackRunner;
  readonly ruleset?: RulesetOptions;
  /**
   * Deregistrations revoke at once and delete their elements this many ms
   * later, in one batch (deleting set elements costs a fixed ~15-20 ms per
   * transaction here; adding to `revoked` a few ms). 0: delete at once.
   * Default 200.
   */
  readonly cleanupDelayMs?: number;
  /** Told when a batched cleanup fails (the NICs stay revoked: closed; the next rebuild tidies up). */
  readonly onCleanupError?: (error: unknown) => void;
}

const keyOf = (n: NicState) => `${n.registration.network}/${n.registration.mac}`;

/**
 * The backend's firewall: a full rebuild at daemon start, then one
 * transaction per change.
 *
 * @example
 * const gateway = new NftGateway(site);
 * await gateway.rebuild(stateFromStore);
 * await gateway.change([], [{ registration, entries }]);
 */
export class NftGateway {
  private readonly nft: NftRunner;
  private readonly conntrack: ConntrackRunner;
  private readonly options: RulesetOptions;
  private readonly cleanupDelayMs: number;
  private readonly onCleanupError: (error: unknown) => void;
  /** Revoked NICs whose elements are still in the kernel, by network/MAC. */
  private readonly pending = new Map<string, NicState>();
  private timer: NodeJS.Timeout | undefined;
  private cleaning: Promise<void> = Promise.resolve();

  constructor(
    readonly site: Site,
    options: NftGatewayOptions = {},
  ) {
    this.nft = options.nft ?? nftRunner();
    this.conntrack = options.conntrack ?? conntrackRunner();
    this.options = options.ruleset ?? {};
    this.cleanupDelayMs = options.cleanupDelayMs ?? 200;
    this.onCleanupError = options.onCleanupError ?? (() => {});
  }

  /** Replace `table inet ticrypt` with the one the state calls for, in one transaction. */
  async rebuild(state: GatewayState): Promise<void> {
    await this.cleaning;
    this.cancelCleanup();
    this.pending.clear();
    await this.nft(await renderRulesetBytes(this.site, state, this.options));
  }

  /**
   * Apply one change (register, deregister, allow-list change) as one
   * transaction, then delete the connections of allow entries it removed.
   *
   * A NIC that goes away is cut off in that transaction by adding it to
   * `revoked`; its elements are deleted in a batch `cleanupDelayMs` later. A
   * change that touches a NIC still awaiting that runs the pending cleanup first.
   */
  async change(before: readonly NicState[], after: readonly NicState[]): Promise<void> {
    await this.cleaning;
    if ([...before, ...after].some((n) => this.pending.has(keyOf(n)))) await this.cleanup();
    const afterKeys = new Set(after.map(keyOf));
    const gone = before.filter((n) => !afterKeys.has(keyOf(n)) && revocableIds(this.site, [n]).length > 0);
    const defer = this.cleanupDelayMs > 0 && gone.length > 0;
    const kept = defer ? before.filter((n) => !gone.includes(n)) : before;
    const ctx = { site: this.site };
    const script = (idempotent: boolean) =>
      `${renderChange({ ...ctx, idempotent }, kept, after)}${defer ? renderRevoke(this.site, gone) : ''}`;
    try {
      await this.nft(script(false));
    } catch (error) {
      // A delete of an element the kernel lacks fails the (atomic) transaction: retry in the form that tolerates it.
      if (!(error instanceof NftError)) throw error;
      await this.nft(script(true));
    }
    if (defer) {
      for (const nic of gone) this.pending.set(keyOf(nic), nic);
      this.scheduleCleanup();
    }
    // Each `conntrack -D` dumps the whole conntrack hash table (a fixed ~10-15 ms, whatever the number of VMs):
    // run them side by side, a few at a time. A revoked NIC's (its SSH flows) wait for its cleanup.
    await this.deleteConnections(conntrackDeletions(kept, after));
  }

  private deleteConnections(filters: readonly string[][]): Promise<void> {
    return eachLimited(filters, CONNTRACK_CONCURRENCY, (filter) => this.conntrack(filter));
  }

  /** Delete the elements of every revoked NIC now (also what the timer does). */
  cleanup(): Promise<void> {
    this.cancelCleanup();
    if (this.pending.size === 0) return this.cleaning;
    const nics = [...this.pending.values()];
    this.pending.clear();
    const run = async () => {
      try {
        await this.nft(renderCleanup(this.site, nics));
        // Their forwarded SSH connections: revoked, they pass no packet; gone, the port is closed to them too.
        await this.deleteConnections(conntrackDeletions(nics, []));
      } catch (error) {
        this.onCleanupError(error);
      }
    };
    this.cleaning = this.cleaning.then(run);
    return this.cleaning;
  }

  /** Stop the cleanup timer (pending NICs stay revoked; a rebuild removes them). */
  cancelCleanup(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** At most `cleanupDelayMs` after the first pending NIC: a steady stream of deregistrations never postpones it. */
  private scheduleCleanup(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => void this.cleanup(), this.cleanupDelayMs);
    this.timer.unref();
  }
}
