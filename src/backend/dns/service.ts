/**
 * The DNS front of the backend service: one UDP and TCP listener on each
 * controlled allow-list network's gateway address, port 53, answering each
 * registered VM by its own allow-list, through one cache in front of the
 * site's resolvers, opening what each answer names in the firewall first.
 * It follows the registry's decisions (see `DnsPolicyFollower`).
 */
import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import type { Network, Site } from '../../site/model.js';
import { dnsOpenElements } from '../nft/elements.js';
import { NftSession } from '../nft/session.js';
import type { EnforcedChange, EnforcedState } from '../service/enforcer.js';
import type { DnsPolicyFollower } from '../service/gateway-enforcer.js';
import { DnsAttribution } from './attribution.js';
import { ResolverCache, type CacheOptions } from './cache.js';
import { DnsClients, servesNetwork, type DnsClient } from './clients.js';
import { DnsHandler, type HandledMessage } from './handler.js';
import { DnsMetrics } from './metrics.js';
import { Opener, type OpenRecord, type TransactionRunner } from './opener.js';
import { DEFAULT_RATE, RateLimiter, type RateLimit } from './rate.js';
import { DnsResolver } from './resolver.js';
import { DnsServer } from './server.js';
import type { WildcardLimits } from './policy.js';
import { Upstream, type UpstreamServer } from './upstream.js';

/** How the DNS front runs. */
export interface DnsServiceOptions {
  readonly site: Site;
  readonly logger?: Logger;
  /** Where its metrics go (the API's registry). */
  readonly metrics?: PromRegistry;
  /** Runs one nft transaction line. Default: a long-lived `nft -i` ({@link NftSession}). */
  readonly nft?: TransactionRunner;
  /** Queries per second per VM. Default {@link DEFAULT_RATE}. */
  readonly rate?: RateLimit;
  readonly wildcardLimits?: WildcardLimits;
  readonly cache?: CacheOptions;
  /** Seconds an answer opens its addresses at least, and the grace after its TTL. Defaults 60 and 60. */
  readonly open?: { readonly floorSeconds?: number; readonly graceSeconds?: number };
  /** The resolvers to ask. Default: the site's `backend.upstreamDns`, port 53. */
  readonly upstream?: readonly UpstreamServer[];
  /** Where to listen for a network. Default its gateway address, port 53. */
  readonly listen?: (network: Network) => { readonly address: string; readonly port: number };
  /** Retry binding a listener this often (ms) while its address is missing or taken. Default 2000. */
  readonly bindRetryMs?: number;
}

/** The DNS front: its listeners, clients, cache and opener. */
export class DnsService implements DnsPolicyFollower {
  readonly clients: DnsClients;
  readonly opener: Opener;
  readonly cache: ResolverCache;
  /** Which answer opened which address for which NIC (read by the flow audit). */
  readonly attribution = new DnsAttribution();
  private readonly upstream: Upstream;
  private readonly session: NftSession | undefined;
  private readonly handler: DnsHandler;
  private readonly servers = new Map<string, DnsServer>();
  private readonly metrics: DnsMetrics | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: DnsServiceOptions) {
    const { site } = options;
    this.clients = new DnsClients(site, options.wildcardLimits);
    this.session = options.nft === undefined ? new NftSession() : undefined;
    const run = options.nft ?? ((line: string) => (this.session as NftSession).run(line));
    this.opener = new Opener({ run, ...options.open });
    this.upstream = new Upstream({
      servers: options.upstream ?? site.backend.upstreamDns.map((address) => ({ address, port: 53 })),
    });
    this.cache = new ResolverCache(this.upstream, options.cache);
    const resolver = new DnsResolver({
      client: (network, ip) => this.clients.find(network, ip),
      lookup: (name, type) => this.cache.lookup(name, type),
      open: (nic, elements, ttl, reason) => this.opener.open(nic, elements, ttl, reason),
      admitted: (nicId, address, name, entries, ttl) =>
        this.attribution.note(nicId, address, name, entries, Date.now() + this.opener.timeoutFor(ttl) * 1000),
    });
    this.metrics = options.metrics === undefined ? undefined : new DnsMetrics(options.metrics, this.opener);
    this.handler = new DnsHandler(resolver, new RateLimiter(options.rate ?? DEFAULT_RATE), (handled) =>
      this.count(handled),
    );
  }

  /** The networks it serves: controlled DNS with allow-list egress. */
  networks(): Network[] {
    return this.options.site.networks.filter(servesNetwork);
  }

  /**
   * Listen on every served network. A listener that cannot bind yet (its
   * address not up, the port taken) is retried in the background and logged.
   */
  async start(): Promise<void> {
    this.sweeper = setInterval(() => {
      this.opener.sweep();
      this.attribution.sweep();
    }, 30_000);
    this.sweeper.unref();
    await this.bindMissing();
  }

  /** The UDP port a network's listener is bound to (tests bind port 0). */
  port(network: string): number | undefined {
    return this.servers.get(network)?.port;
  }

  /** Stop listening, stop nft and the upstream sockets. What is open stays open until it expires. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    clearTimeout(this.retry);
    for (const server of this.servers.values()) await server.close();
    this.servers.clear();
    this.upstream.close();
    await this.session?.close();
  }

  /**
   * Every registered NIC and allow-list, after the table was rebuilt from the
   * store (daemon start, or the guard's repair): the `dns_*` sets are empty, so
   * nothing is open and the next answer opens again.
   */
  rebuild(state: EnforcedState): void {
    this.clients.rebuild(state.registrations, state.allowLists);
    this.opener.forget();
    this.attribution.end();
  }

  /** The table was lost (the guard saw it): open nothing until the rebuild (see `Opener.suspend`). */
  tableLost(): void {
    this.opener.suspend();
    this.attribution.end();
  }

  /** One registry change: close what NICs that went away, or lost entries, no longer justify. */
  async change(change: EnforcedChange): Promise<void> {
    const { gone, changed } = this.clients.apply(change.before, change.after);
    for (const client of gone) this.attribution.end(client.registration.nicId);
    const closing = [
      ...gone.map((client) => this.opener.close(client.key)),
      ...changed.map((client) => this.opener.retain(client.key, (record) => justified(client, record))),
    ];
    const results = await Promise.allSettled(closing);
    for (const result of results) {
      if (result.status === 'rejected') {
        this.options.logger?.error(
          { err: result.reason },
          'closing DNS-opened destinations failed; they expire by their timeout',
        );
      }
    }
  }

  private async bindMissing(): Promise<void> {
    let missing = false;
    for (const network of this.networks()) {
      if (this.servers.has(network.name) || this.closed) continue;
      const at = this.options.listen?.(network) ?? { address: network.gateway, port: 53 };
      const server = new DnsServer({ address: at.address, port: at.port }, (source, message, transport) =>
        this.handler.handle(network.name, source, message, transport),
      );
      try {
        await server.listen();
        this.servers.set(network.name, server);
        this.options.logger?.info({ network: network.name, ...at }, 'DNS front listening');
      } catch (error) {
        missing = true;
        this.options.logger?.error(
          { network: network.name, ...at, err: error },
          'DNS front cannot listen yet; retrying',
        );
      }
    }
    if (missing && !this.closed) {
      this.retry = setTimeout(() => void this.bindMissing(), this.options.bindRetryMs ?? 2000);
      this.retry.unref();
    }
  }

  private count(handled: HandledMessage): void {
    const metrics = this.metrics;
    if (metrics === undefined) return;
    metrics.queries.inc({ network: handled.network, result: handled.outcome });
    if (handled.withheld !== undefined && handled.withheld > 0) metrics.withheld.inc(handled.withheld);
    if (handled.seconds !== undefined && handled.cached !== undefined) {
      metrics.seconds.observe({ cache: handled.cached ? 'hit' : 'miss' }, handled.seconds);
    }
  }
}

/**
 * Whether a NIC's changed policy still opens this element: one of the
 * answer's names is still allowed, all of them are, and the entries that
 * allow the first still open this address with this element.
 */
function justified(client: DnsClient, record: OpenRecord): boolean {
  const verdicts = record.names.map((name) => client.policy.judge(name));
  const first = verdicts[0];
  if (first?.kind !== 'allowed' || verdicts.some((v) => v.kind !== 'allowed')) return false;
  const id = `${record.element.set} ${record.element.key}`;
  return client.policy
    .opening(first.entries, record.address)
    .some((entry) =>
      dnsOpenElements(client.registration.nicId, record.address, entry).some((e) => `${e.set} ${e.key}` === id),
    );
}
