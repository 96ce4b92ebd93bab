import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ApiError } from '../../errors/api-error.js';
import { isTicryptNetError } from '../../errors/ticrypt-net-error.js';
import {
  API_PATHS,
  type PlacementAnswer,
  type ReconcileAnswer,
  type RegisterAnswer,
  type SetPlacementAnswer,
  type SshForwardsAnswer,
  type VmSshAnswer,
} from '../../protocol/api.js';
import {
  AllowListBody,
  DeregisterBody,
  entryToBody,
  PlacementBody,
  ReconcileBody,
  RegisterBody,
  SshSourcesBody,
  VmParams,
} from '../../protocol/schemas.js';
import type { AllowListLimits, ApiLimits } from '../../site/model.js';
import type { AuditEvent, Registry } from '../service/registry.js';
import type { Store } from '../store/store.js';
import { checkAllowListLimits } from './allow-limits.js';
import { authenticate, principalOf } from './auth.js';
import { parseRequest as parse } from './parse.js';
import { addPortSecurityRoutes } from './port-security-routes.js';
import type { GatewayMacs } from '../gateway-macs.js';
import type { Metrics } from './metrics.js';
import { RefusalAudit } from './refusal-audit.js';

/** What the API serves from. */
export interface ApiOptions {
  readonly registry: Registry;
  readonly store: Store;
  readonly metrics: Metrics;
  /** Request logs; the audit trail goes through the registry's audit callback and {@link ApiOptions.audit}. */
  readonly logger?: Logger;
  /** Told of every refused request (4xx), for the audit trail; rate-limit refusals at most once per 10 s per key. */
  readonly audit?: (event: AuditEvent) => void;
  /** Largest accepted body in bytes (default 1 MiB; a 10,000-NIC reconcile fits). */
  readonly bodyLimit?: number;
  /** TLS key and certificate (PEM); without them, plain HTTP. */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Whether the domain entries of allow-lists can be resolved (site.backend.upstreamDns set). */
  readonly domainsResolvable?: boolean;
  /** Request rate limits (the site's `backend.api`); default 1200 per token, 60 per address without one. */
  readonly rateLimits?: ApiLimits;
  /** Allow-list caps (the site's `backend.allowLists`); default 256 entries, 256 elements each, 4096 in all. */
  readonly allowListLimits?: AllowListLimits;
  /** What `/healthz` reports: the problems found (none: healthy). Default: none. */
  readonly health?: () => readonly string[];
  /** Port security: the gateway's MAC per network (in register answers and the peers route). */
  readonly gatewayMac?: GatewayMacs;
  /** The site's network names (the peers route refuses others). */
  readonly networks?: readonly string[];
}

const STATUS: Record<string, number> = {
  E_UNKNOWN_NETWORK: 422,
  E_MAC_CONFLICT: 409,
  E_NOT_PLACED: 403,
  E_QUOTA_EXCEEDED: 429,
  E_ADDRESS_EXHAUSTED: 503,
  E_FIREWALL_UNAVAILABLE: 503,
  E_SSH_PORTS_EXHAUSTED: 503,
  E_SSH_PORT_IN_USE: 503,
  E_SSH_SOURCES_OUTSIDE: 422,
};

const DEFAULT_RATE_LIMITS: ApiLimits = { requestsPerMinute: 1200, unauthenticatedPerMinute: 60 };
const DEFAULT_ALLOW_LIST_LIMITS: AllowListLimits = { entries: 256, elementsPerEntry: 256, elementsPerList: 4096 };

/**
 * Build the backend's HTTP API (not yet listening).
 *
 * Host routes (host token): `POST /v1/register`, `POST /v1/deregister`,
 * `POST /v1/reconcile`, `GET /v1/registrations` and `GET /v1/ssh` (own).
 * Admin routes (admin token): `PUT|GET /v1/vms/:uuid/allow-list`,
 * `PUT|GET /v1/vms/:uuid/placement`, `GET /v1/allow-lists`,
 * `GET /v1/vms/:uuid/ssh`, `PUT|DELETE /v1/vms/:uuid/ssh/sources`, and
 * `GET /v1/registrations` and `GET /v1/ssh` (all). `GET /metrics`: a
 * metrics or admin token. Open: `GET /healthz`. Every request but `/healthz`
 * is rate-limited per token (per client address without a valid one). Every
 * refusal is `{ error: { code, message, issues? } }` with a 4xx, changes
 * nothing, and is audited.
 */
export function buildApi(options: ApiOptions): FastifyInstance {
  const { registry, store, metrics } = options;
  const limits = options.rateLimits ?? DEFAULT_RATE_LIMITS;
  const allowListLimits = options.allowListLimits ?? DEFAULT_ALLOW_LIST_LIMITS;
  const refusals = new RefusalAudit(options.audit ?? (() => {}));
  const gatewayMacOf: GatewayMacs = options.gatewayMac ?? (() => undefined);
  // fastify's option types do not compose under exactOptionalPropertyTypes; the shape is checked by fastify at start.
  const createServer = Fastify as unknown as (options: object) => FastifyInstance;
  const app = createServer({
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    ...(options.https ? { https: options.https } : {}),
  });
  const rateKey = (request: FastifyRequest) => {
    const principal = principalOf(request, store.tokens);
    return principal ? `token:${principal.name}` : `address:${request.ip}`;
  };

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    metrics.requests.observe(
      { route, method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((error, request, reply) => {
    let status = 500;
    let body: { code: string; message: string; issues?: unknown };
    if (error instanceof ApiError) {
      status = error.status;
      body = { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) };
    } else if (isTicryptNetError(error)) {
      status = STATUS[error.code] ?? 500;
      body = { code: error.code, message: error.message };
    } else if (
      typeof (error as { statusCode?: unknown }).statusCode === 'number' &&
      (error as { statusCode: number }).statusCode < 500
    ) {
      // fastify's own refusals (body too large, bad JSON, wrong content type) and the rate limiter's.
      const e = error as { statusCode: number; code?: string; message: string };
      status = e.statusCode;
      body = { code: e.code ?? 'E_REQUEST_INVALID', message: e.message };
    } else {
      body = { code: 'E_INTERNAL', message: 'Internal error; see the backend log' };
      options.logger?.error({ err: error }, 'request failed');
    }
    metrics.errors.inc({ code: body.code });
    if (status >= 400 && status < 500) {
      const principal = principalOf(request, store.tokens);
      refusals.refused(rateKey(request), {
        status,
        code: body.code,
        method: request.method,
        url: request.url,
        ...(principal ? { principal: principal.name, role: principal.role } : { address: request.ip }),
        message: body.message,
      });
    }
    return reply.status(status).send({ error: body });
  });

  void app.register(rateLimit, {
    global: true,
    timeWindow: 60_000,
    keyGenerator: rateKey,
    max: (request: FastifyRequest) =>
      principalOf(request, store.tokens) ? limits.requestsPerMinute : limits.unauthenticatedPerMinute,
    errorResponseBuilder: (_request: FastifyRequest, context: { max: number; after: string }) => ({
      statusCode: 429,
      code: 'E_RATE_LIMITED',
      message: `Too many requests: expected at most ${context.max} per minute for this token or address (backend.api), retry in ${context.after}`,
    }),
  });

  // Routes inside a plugin registered after the rate limiter, so its onRoute hook applies to each.
  void app.register(async (api) => {
    api.get(API_PATHS.health, { config: { rateLimit: false } }, async (_request, reply) => {
      const problems = options.health?.() ?? [];
      if (problems.length === 0) return { ok: true };
      return reply.status(503).send({ ok: false, problems });
    });

    api.get(API_PATHS.metrics, async (request, reply) => {
      authenticate(request, store.tokens, 'metrics', 'admin');
      const counts = registry.registrationCounts();
      metrics.registrations.reset();
      for (const [network, count] of counts) metrics.registrations.set({ network }, count);
      reply.header('content-type', metrics.registry.contentType);
      return metrics.render();
    });

    api.post(API_PATHS.register, async (request): Promise<RegisterAnswer> => {
      const host = authenticate(request, store.tokens, 'host');
      const body = parse(RegisterBody, request.body, 'body');
      const { generation, migration, ...nic } = body;
      const result = await registry.register(host.name, nic, generation, migration);
      const gatewayMac = gatewayMacOf(nic.network);
      return {
        status: result.status,
        ...(result.registration ? { ip: result.registration.ip } : {}),
        ...(gatewayMac === undefined ? {} : { gatewayMac }),
        network: nic.network,
        mac: nic.mac,
        ...(result.ssh ? { ssh: result.ssh } : {}),
      };
    });

    api.post(API_PATHS.deregister, async (request) => {
      const host = authenticate(request, store.tokens, 'host');
      const body = parse(DeregisterBody, request.body, 'body');
      return registry.deregister(host.name, { network: body.network, mac: body.mac }, body.generation);
    });

    api.post(API_PATHS.reconcile, async (request): Promise<ReconcileAnswer> => {
      const host = authenticate(request, store.tokens, 'host');
      const body = parse(ReconcileBody, request.body, 'body');
      return registry.reconcile(host.name, body.nics, body.generation);
    });

    api.get(API_PATHS.registrations, async (request) => {
      const principal = authenticate(request, store.tokens, 'host', 'admin');
      return { registrations: registry.registrations(principal.role === 'admin' ? undefined : principal.name) };
    });

    api.put(API_PATHS.vmAllowList, async (request) => {
      const admin = authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      const { entries } = parse(AllowListBody, request.body, 'body');
      if (options.domainsResolvable === false && entries.some((e) => e.type === 'domain')) {
        throw new ApiError(
          422,
          'E_REQUEST_INVALID',
          'Domain entries need backend.upstreamDns in the site: no resolver is configured to resolve them',
        );
      }
      checkAllowListLimits(entries, allowListLimits);
      await registry.setAllowList(uuid, entries, admin.name);
      return { vmUuid: uuid, entries: entries.map(entryToBody) };
    });

    api.get(API_PATHS.vmAllowList, async (request) => {
      authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      return { vmUuid: uuid, entries: registry.allowList(uuid).map(entryToBody) };
    });

    api.put(API_PATHS.vmPlacement, async (request): Promise<SetPlacementAnswer> => {
      const admin = authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      const { hosts } = parse(PlacementBody, request.body, 'body');
      const result = await registry.setPlacement(uuid, hosts, admin.name);
      return { vmUuid: uuid, hosts: result.hosts, revoked: result.revoked.length };
    });

    api.get(API_PATHS.vmPlacement, async (request): Promise<PlacementAnswer> => {
      authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      return { vmUuid: uuid, hosts: registry.placement(uuid) };
    });

    api.get(API_PATHS.sshForwards, async (request): Promise<SshForwardsAnswer> => {
      const principal = authenticate(request, store.tokens, 'host', 'admin');
      return { forwards: registry.sshForwards(principal.role === 'admin' ? {} : { hostId: principal.name }) };
    });

    api.get(API_PATHS.vmSsh, async (request): Promise<VmSshAnswer> => {
      authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      return registry.vmSsh(uuid);
    });

    api.put(API_PATHS.vmSshSources, async (request): Promise<VmSshAnswer> => {
      const admin = authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      const { sources } = parse(SshSourcesBody, request.body, 'body');
      return registry.setSshSources(uuid, sources, admin.name);
    });

    api.delete(API_PATHS.vmSshSources, async (request): Promise<VmSshAnswer> => {
      const admin = authenticate(request, store.tokens, 'admin');
      const { uuid } = parse(VmParams, request.params, 'params');
      return registry.setSshSources(uuid, undefined, admin.name);
    });

    api.get(API_PATHS.allowLists, async (request) => {
      authenticate(request, store.tokens, 'admin');
      return {
        allowLists: store.allowLists.list().map((l) => ({ vmUuid: l.vmUuid, entries: l.entries.map(entryToBody) })),
      };
    });

    addPortSecurityRoutes(api, {
      store,
      networks: options.networks ?? [],
      gatewayMac: gatewayMacOf,
      ...(options.audit === undefined ? {} : { audit: options.audit }),
    });
  });

  return app;
}
