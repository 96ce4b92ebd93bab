/**
 * The backend's composition root: opens the store, wires the firewall
 * (`nft/`), dnsmasq (`dnsmasq/`, through `service/`), the DNS front (`dns/`),
 * the registry and the API (`api/`) together, rebuilds kernel and dnsmasq from
 * the store, starts the DNS front, then serves.
 * For: `backend serve`. May not: hold any decision of its own (each part it
 * wires owns its rules); nothing below it imports it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { FirewallUnavailableError } from '../errors/firewall-unavailable-error.js';
import { NftError } from '../errors/nft-error.js';
import type { Site } from '../site/model.js';
import { Metrics } from './api/metrics.js';
import { DataPlaneMetrics } from './api/dataplane-metrics.js';
import { liveDataPlaneSources } from './api/dataplane-sources.js';
import { buildApi } from './api/server.js';
import { DnsService } from './dns/service.js';
import { NftGateway } from './nft/gateway.js';
import { ListeningPorts } from './ssh/listening.js';
import { openStore, type Store } from './store/store.js';
import { DnsmasqFleet } from './service/dnsmasq-fleet.js';
import { GatewayEnforcer } from './service/gateway-enforcer.js';
import { Registry, type AuditEvent } from './service/registry.js';
import { TableGuard } from './service/table-guard.js';
import { AuditService } from './audit/service.js';
import { AuditStore } from './audit/day-store.js';
import { registerAuditStoreMetrics } from './audit/store-metrics.js';
import type { AuditSink } from './audit/record.js';

import { gatewayMacs } from './gateway-macs.js';

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
  /** DNS queries per second each VM may send to the DNS front (bursts of twice that). Default 100. */
  readonly dnsRate?: number;
  readonly logger: Logger;
  /** How often the guard checks the table, the fail-closed rules and ARP settings, ms (default 1000). */
  readonly guardIntervalMs?: number;
  /**
   * Flow audit of the networks whose site setting is `audit: records` (src/backend/audit/): ulogd's files in
   * `dir` (default `<stateDir>/flow-audit`), records to `sink` (default: the hash-chained day files of the site's
   * `backend.auditStore`, in `recordsDir` when given), ulogd started by the service (`managed`, default) or by
   * systemd (`external`). Absent: no audit.
   */
  readonly audit?: {
    readonly dir?: string;
    readonly recordsDir?: string;
    readonly sink?: AuditSink;
    readonly ulogd?: 'managed' | 'external';
    readonly nflogGroup?: number;
    readonly pollMs?: number;
    /** Both ulogd netlink socket buffers, bytes (tests driving the audit past capacity); default 64 MiB / 8 MiB. */
    readonly netlinkBuffer?: number;
    /** Rotate ulogd's output files past this many bytes read (default 64 MiB). */
    readonly rotateBytes?: number;
  };
}

/** A running backend. */
export interface RunningBackend {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly registry: Registry;
  readonly guard: TableGuard;
  /** The URL the API answers on. */
  readonly url: string;
  /** The flow audit, when on. */
  readonly audit?: AuditService;
  /**
   * Stop listening, stop watching, stop dnsmasq, close the store. The firewall and the fail-closed rules stay
   * as they are: VMs keep what they have.
   */
  close(): Promise<void>;
}

/** How often registrations of silent hosts expire and old tombstones go, at most (ms). */
const SWEEP_MS = 30_000;

/**
 * Start the backend: open the store, install the fail-closed rules, rebuild
 * `table inet ticrypt` and every dnsmasq from the store (the store is the
 * truth), watch the table, start the DNS front on each controlled network,
 * then serve the API.
 */
export async function startBackend(options: BackendOptions): Promise<RunningBackend> {
  const { site, logger } = options;
  await mkdir(dirname(options.storePath), { recursive: true });
  await mkdir(options.stateDir, { recursive: true });
  const store = openStore(options.storePath);
  const metrics = new Metrics();
  new DataPlaneMetrics(metrics.registry, site, liveDataPlaneSources(store));
  const audit = logger.child({ audit: true });
  const auditDir = options.audit?.dir ?? join(options.stateDir, 'flow-audit');
  const auditGroup = options.audit?.nflogGroup ?? 2;
  const nft = new NftGateway(site, {
    ruleset: {
      log: options.logDrops === true,
      ...(options.audit === undefined ? {} : { audit: { nflogGroup: auditGroup } }),
    },
    onCleanupError: (error) => logger.error({ err: error }, 'deleting revoked NICs elements failed; they stay revoked'),
  });
  const fleet = new DnsmasqFleet(site, {
    stateDir: options.stateDir,
    onLog: (network, line) =>
      HOST_ENTRY_READ.test(line) ? logger.debug({ dnsmasq: network }, line) : logger.info({ dnsmasq: network }, line),
    onExit: (network, detail) => logger.error({ dnsmasq: network }, `dnsmasq exited (${detail}); restarting`),
  });
  const rate = options.dnsRate ?? 100;
  const dns = new DnsService({
    site,
    logger: logger.child({ dns: true }),
    metrics: metrics.registry,
    rate: { perSecond: rate, burst: 2 * rate },
  });
  const enforcer = new GatewayEnforcer(nft, fleet, dns);
  const auditLine = (event: AuditEvent) => audit.info(event, event.event);
  const timed = {
    rebuild: async (state: Parameters<GatewayEnforcer['rebuild']>[0]) => {
      const end = metrics.enforce.startTimer({ kind: 'rebuild' });
      await enforcer.rebuild(state);
      end();
    },
    rebuildFirewall: async (state: Parameters<GatewayEnforcer['rebuild']>[0]) => {
      const end = metrics.enforce.startTimer({ kind: 'repair' });
      await enforcer.rebuildFirewall(state);
      end();
    },
    change: async (change: Parameters<GatewayEnforcer['change']>[0]) => {
      const end = metrics.enforce.startTimer({ kind: 'change' });
      try {
        await enforcer.change(change);
      } catch (error) {
        // A change the kernel refused may mean the table is gone: the guard checks, and rebuilds if so;
        // the caller gets a 503 to retry (the hook spools it), not a 500.
        if (error instanceof NftError) {
          guard.suspect('a firewall change failed');
          throw new FirewallUnavailableError({ cause: error });
        }
        throw error;
      }
      end();
    },
  };
  // SSH ports skip those other programs listen on in this namespace (read at most once a second).
  const listening = new ListeningPorts();
  const registry = new Registry(site, store, timed, { audit: auditLine, listeningPorts: () => listening.get() });
  const guard = new TableGuard({
    site,
    // The rebuild re-creates the dns_* sets empty and tells the DNS front (GatewayEnforcer.rebuildFirewall).
    rebuild: () => registry.rebuild({ firewallOnly: true }),
    onTableLost: () => dns.tableLost(),
    audit: auditLine,
    metrics,
    logger,
    pidDir: join(options.stateDir, 'guard'),
    ...(options.guardIntervalMs === undefined ? {} : { checkIntervalMs: options.guardIntervalMs }),
  });
  // The records' store: the site's day files (hash-chained, rotated, kept), unless the caller brings a sink.
  let records: AuditStore | undefined;
  if (options.audit !== undefined && options.audit.sink === undefined) {
    const { recordsDir } = options.audit;
    records = await AuditStore.open({
      settings: { ...site.backend.auditStore, ...(recordsDir === undefined ? {} : { dir: recordsDir }) },
    });
    registerAuditStoreMetrics(metrics.registry, records);
    if (records.opened.torn !== undefined) audit.warn(records.opened.torn, 'audit file had a torn tail');
    audit.info({ head: records.opened.head }, 'audit records: chain head at start');
  }
  const auditService =
    options.audit === undefined
      ? undefined
      : new AuditService({
          site,
          store,
          dir: auditDir,
          sink: options.audit.sink ?? records!,
          metrics: metrics.registry,
          logger: logger.child({ flowAudit: true }),
          nflogGroup: auditGroup,
          ulogd: options.audit.ulogd ?? 'managed',
          dnsAdmissions: (nicId, address, atMs) => dns.attribution.admissions(nicId, address, atMs),
          ...(options.audit.pollMs === undefined ? {} : { pollMs: options.audit.pollMs }),
          ...(options.audit.netlinkBuffer === undefined ? {} : { netlinkBuffer: options.audit.netlinkBuffer }),
          ...(options.audit.rotateBytes === undefined ? {} : { rotateBytes: options.audit.rotateBytes }),
        });
  try {
    await guard.prepare();
    const started = Date.now();
    await registry.start();
    logger.info(
      { registrations: store.registrations.list().length, ms: Date.now() - started },
      'rebuilt firewall and dnsmasq from the store',
    );
    await guard.watch();
    await dns.start();
    await auditService?.start();
  } catch (error) {
    await auditService?.close();
    await records?.close();
    await dns.close();
    await guard.stop();
    await fleet.stop();
    store.close();
    throw error;
  }
  const sweeps = setInterval(
    () =>
      void registry
        .sweep()
        .then(({ removed }) => metrics.expired.inc(removed))
        .catch((error: unknown) => logger.error({ err: error }, 'expiring registrations failed')),
    Math.min(SWEEP_MS, Math.max(1000, site.backend.registrations.expireAfter / 4)),
  );
  sweeps.unref();
  const https =
    options.tls && !options.insecureHttp
      ? { key: await readFile(options.tls.key), cert: await readFile(options.tls.cert) }
      : undefined;
  const app = buildApi({
    registry,
    store,
    metrics,
    logger,
    audit: auditLine,
    health: () => guard.health(),
    rateLimits: site.backend.api,
    allowListLimits: site.backend.allowLists,
    domainsResolvable: site.backend.upstreamDns.length > 0,
    gatewayMac: gatewayMacs(site),
    networks: site.networks.map((n) => n.name),
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
    guard,
    url,
    async close() {
      clearInterval(sweeps);
      await app.close();
      await auditService?.close();
      if (records !== undefined) {
        audit.info({ head: records.head }, 'audit records: chain head at stop');
        await records.close();
      }
      await guard.stop();
      await dns.close();
      await fleet.stop();
      store.close();
    },
    ...(auditService === undefined ? {} : { audit: auditService }),
  };
}
