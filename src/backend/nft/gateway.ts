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
import { renderChange, renderSshForwardChange, type DeltaContext, type NicState } from './delta.js';
import { renderRuleset } from './ruleset.js';
import type { GatewayState, RulesetOptions, SshForward } from './types.js';

/** How many `conntrack -D` run at once after a change. */
const CONNTRACK_CONCURRENCY = 4;

/** How {@link NftGateway} runs its programs. */
export interface NftGatewayOptions {
  /** Default: `nft -f -` in the current namespace. */
  readonly nft?: NftRunner;
  /** Default: `conntrack -D ...` in the current namespace. */
  readonly conntrack?: ConntrackRunner;
  readonly ruleset?: RulesetOptions;
}

/**
 * The backend's firewall: a full rebuild at daemon start, then one
 * transaction per change.
 *
 * @example
 * const gateway = new NftGateway(site);
 * await gateway.rebuild(stateFromStore);
 * await gateway.change({ before: [], after: [] }, [], [{ registration, entries }]);
 */
export class NftGateway {
  private readonly nft: NftRunner;
  private readonly conntrack: ConntrackRunner;
  private readonly options: RulesetOptions;

  constructor(
    readonly site: Site,
    options: NftGatewayOptions = {},
  ) {
    this.nft = options.nft ?? nftRunner();
    this.conntrack = options.conntrack ?? conntrackRunner();
    this.options = options.ruleset ?? {};
  }

  /** Replace `table inet ticrypt` with the one the state calls for, in one transaction. */
  async rebuild(state: GatewayState): Promise<void> {
    await this.nft(renderRuleset(this.site, state, this.options));
  }

  /**
   * Apply one change (register, deregister, allow-list change) as one
   * transaction, then delete the connections it no longer allows.
   */
  async change(
    domains: DeltaContext['domains'],
    before: readonly NicState[],
    after: readonly NicState[],
  ): Promise<void> {
    const ctx = { site: this.site, domains, options: this.options };
    try {
      await this.nft(renderChange(ctx, before, after));
    } catch (error) {
      // A delete of an element the kernel lacks fails the (atomic) transaction: retry in the form that tolerates it.
      if (!(error instanceof NftError)) throw error;
      await this.nft(renderChange({ ...ctx, idempotent: true }, before, after));
    }
    // Each `conntrack -D` dumps the whole conntrack hash table (a fixed ~10-15 ms, whatever the number of VMs;
    // a deregistration needs two): run them side by side, a few at a time.
    await eachLimited(conntrackDeletions(before, after), CONNTRACK_CONCURRENCY, (filter) => this.conntrack(filter));
  }

  /** Add, replace or remove the SSH forward of one backend port; a removed forward's connections are deleted. */
  async sshForward(before: SshForward | undefined, after: SshForward | undefined): Promise<void> {
    await this.nft(renderSshForwardChange(before, after));
    if (before !== undefined && (after === undefined || after.ip !== before.ip)) {
      await this.conntrack(['-p', 'tcp', '--reply-src', before.ip, '--reply-port-src', '22']);
    }
  }
}
