/**
 * The backend's composition root: opens the store, wires the firewall
 * (`nft/`), dnsmasq (`dnsmasq/`, through `service/`), the registry and the API
 * (`api/`) together, rebuilds kernel and dnsmasq from the store, then serves.
 * For: `backend serve`. May not: hold any decision of its own (each part it
 * wires owns its rules); nothing below it imports it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Site } from '../site/model.js';
import { Metrics } from './api/metrics.js';
import { buildApi } from './api/server.js';
import { NftGateway } from './nft/gateway.js';
import { openStore, type Store } from './store/store.js';
import { DnsmasqFleet } from './service/dnsmasq-fleet.js';
import { GatewayEnforcer } from './service/gateway-enforcer.js';
import { Registry } from './service/registry.js';

/**
 * dnsmasq's line for each host entry file it reads: one per registered NIC at
 * start and again on every SIGHUP (each deregistration), 10,000 lines a time
 * at 10,000 VMs; logged at debug, so relaying them costs next to nothing.
 */
const HOST_ENTRY_READ = /^dnsmasq-dhcp\[\d+\]: read \//;

/** What `ticrypt-net backend serve` runs with. */
export interface BackendOptions {
  readonly site: Site;
  /** SQLite store file. */
  readonly storePath: string;
  /** dnsmasq configs, host entries and leases live below it. */
  readonly stateDir: string;
  /** Where the API listens; default the site's management address and port. */
  readonly listen?: { readonly host: string; readonly port: number };
  /** TLS certificate and key files (PEM). Required unless `insecureHttp`. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Serve plain HTTP (only for a management network that is itself protected, or tests). */
  readonly insecureHttp?: boolean;
  /** Log dropped secure egress (rate-limited, prefix `ticrypt`). */
  readonly logDrops?: boolean;
  readonly logger: Logger;
}

/** A running backend. */
export interface RunningBackend {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly registry: Registry;
  /** The URL the API answers on. */
  readonly url: string;
  /** Stop listening, stop dnsmasq, close the store. The firewall stays as it is: VMs keep what they have. */
  close(): Promise<void>;
}

/**
 * Start the backend: open the store, rebuild `table inet ticrypt` and every
 * dnsmasq from it (the store is the truth), then serve the API.
 */
export async function startBackend(options: BackendOptions): Promise<RunningBackend> {
  const { site, logger } = options;
  await mkdir(dirname(options.storePath), { recursive: true });
  await mkdir(options.stateDir, { recursive: true });
  const store = openStore(options.storePath);
  const metrics = new Metrics();
  const audit = logger.child({ audit: true });
  const nft = new NftGateway(site, {
    ruleset: { log: options.logDrops === true },
    onCleanupError: (error) => logger.error({ err: error }, 'deleting revoked NICs elements failed; they stay revoked'),
  });
  const fleet = new DnsmasqFleet(site, {
    stateDir: options.stateDir,
    onLog: (network, line) =>
      HOST_ENTRY_READ.test(line) ? logger.debug({ dnsmasq: network }, line) : logger.info({ dnsmasq: network }, line),
    onExit: (network, detail) => logger.error({ dnsmasq: network }, `dnsmasq exited (${detail}); restarting`),
  });
  const enforcer = new GatewayEnforcer(nft, fleet);
  const timed = {
    rebuild: async (state: Parameters<GatewayEnforcer['rebuild']>[0]) => {
      const end = metrics.enforce.startTimer({ kind: 'rebuild' });
      await enforcer.rebuild(state);
      end();
    },
    change: async (change: Parameters<GatewayEnforcer['change']>[0]) => {
      const end = metrics.enforce.startTimer({ kind: 'change' });
      await enforcer.change(change);
      end();
    },
  };
  const registry = new Registry(site, store, timed, (event) => audit.info(event, event.event));
  try {
    const started = Date.now();
    await registry.start();
    logger.info(
      { registrations: store.registrations.list().length, ms: Date.now() - started },
      'rebuilt firewall and dnsmasq from the store',
    );
  } catch (error) {
    await fleet.stop();
    store.close();
    throw error;
  }
  const https =
    options.tls && !options.insecureHttp
      ? { key: await readFile(options.tls.key), cert: await readFile(options.tls.cert) }
      : undefined;
  const app = buildApi({
    registry,
    store,
    metrics,
    logger,
    domainsResolvable: site.backend.upstreamDns.length > 0,
    ...(https ? { https } : {}),
  });
  const listen = options.listen ?? { host: site.backend.management.address, port: site.backend.management.port };
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const url = `${https ? 'https' : 'http'}://${listen.host}:${port}`;
  return {
    app,
    store,
    registry,
    url,
    async close() {
      await app.close();
      await fleet.stop();
      store.close();
    },
  };
}
