import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ApiError } from '../../errors/api-error.js';
import { isTicryptNetError } from '../../errors/ticrypt-net-error.js';
import { API_PATHS, type RegisterAnswer } from '../../protocol/api.js';
import {
  AllowListBody,
  DeregisterBody,
  entryToBody,
  ReconcileBody,
  RegisterBody,
  VmParams,
} from '../../protocol/schemas.js';
import { fromZodIssues } from '../../site/issues.js';
import type { Registry } from '../service/registry.js';
import type { Store } from '../store/store.js';
import { authenticate } from './auth.js';
import type { Metrics } from './metrics.js';

/** What the API serves from. */
export interface ApiOptions {
  readonly registry: Registry;
  readonly store: Store;
  readonly metrics: Metrics;
  /** Request logs; the audit trail goes through the registry's audit callback. */
  readonly logger?: Logger;
  /** Largest accepted body in bytes (default 1 MiB; a 10,000-NIC reconcile fits). */
  readonly bodyLimit?: number;
  /** TLS key and certificate (PEM); without them, plain HTTP. */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Whether the domain entries of allow-lists can be resolved (site.backend.upstreamDns set). */
  readonly domainsResolvable?: boolean;
}

const STATUS: Record<string, number> = {
  E_UNKNOWN_NETWORK: 422,
  E_MAC_CONFLICT: 409,
  E_ADDRESS_EXHAUSTED: 503,
};

/** Validate `value` with `schema`, or throw a 400 naming every bad field. */
function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const issues = fromZodIssues(result.error.issues, [where]);
  throw new ApiError(
    400,
    'E_REQUEST_INVALID',
    `Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}

/**
 * Build the backend's HTTP API (not yet listening).
 *
 * Host routes (host token): `POST /v1/register`, `POST /v1/deregister`,
 * `POST /v1/reconcile`, `GET /v1/registrations` (own). Admin routes (admin
 * token): `PUT|GET /v1/vms/:uuid/allow-list`, `GET /v1/allow-lists`,
 * `GET /v1/registrations?all`. Open: `GET /healthz`, `GET /metrics`.
 * Every refusal is `{ error: { code, message, issues? } }` with a 4xx and
 * changes nothing.
 */
export function buildApi(options: ApiOptions): FastifyInstance {
  const { registry, store, metrics } = options;
  // fastify's option types do not compose under exactOptionalPropertyTypes; the shape is checked by fastify at start.
  const createServer = Fastify as unknown as (options: object) => FastifyInstance;
  const app = createServer({
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    ...(options.https ? { https: options.https } : {}),
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    metrics.requests.observe(
      { route, method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((error, _request, reply) => {
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
      // fastify's own refusals: body too large, bad JSON, wrong content type.
      const e = error as { statusCode: number; code?: string; message: string };
      status = e.statusCode;
      body = { code: e.code ?? 'E_REQUEST_INVALID', message: e.message };
    } else {
      body = { code: 'E_INTERNAL', message: 'Internal error; see the backend log' };
      options.logger?.error({ err: error }, 'request failed');
    }
    metrics.errors.inc({ code: body.code });
    return reply.status(status).send({ error: body });
  });

  app.get(API_PATHS.health, async () => ({ ok: true }));
  app.get(API_PATHS.metrics, async (_request, reply) => {
    metrics.registrations.reset();
    for (const [network, count] of store.registrations.countByNetwork()) metrics.registrations.set({ network }, count);
    reply.header('content-type', metrics.registry.contentType);
    return metrics.render();
  });

  app.post(API_PATHS.register, async (request): Promise<RegisterAnswer> => {
    const host = authenticate(request, store.tokens, 'host');
    const body = parse(RegisterBody, request.body, 'body');
    const { generation, ...nic } = body;
    const result = await registry.register(host.name, nic, generation);
    return {
      status: result.status,
      ...(result.registration ? { ip: result.registration.ip } : {}),
      network: nic.network,
      mac: nic.mac,
    };
  });

  app.post(API_PATHS.deregister, async (request) => {
    const host = authenticate(request, store.tokens, 'host');
    const body = parse(DeregisterBody, request.body, 'body');
    return registry.deregister(host.name, { network: body.network, mac: body.mac }, body.generation);
  });

  app.post(API_PATHS.reconcile, async (request) => {
    const host = authenticate(request, store.tokens, 'host');
    const body = parse(ReconcileBody, request.body, 'body');
    return registry.reconcile(host.name, body.nics, body.generation);
  });

  app.get(API_PATHS.registrations, async (request) => {
    const header = request.headers.authorization ?? '';
    const principal = store.tokens.verify(header.replace(/^Bearer /, ''));
    if (principal?.role === 'admin') return { registrations: registry.registrations() };
    const host = authenticate(request, store.tokens, 'host');
    return { registrations: registry.registrations(host.name) };
  });

  app.put(API_PATHS.vmAllowList, async (request) => {
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
    await registry.setAllowList(uuid, entries, admin.name);
    return { vmUuid: uuid, entries: entries.map(entryToBody) };
  });

  app.get(API_PATHS.vmAllowList, async (request) => {
    authenticate(request, store.tokens, 'admin');
    const { uuid } = parse(VmParams, request.params, 'params');
    return { vmUuid: uuid, entries: registry.allowList(uuid).map(entryToBody) };
  });

  app.get(API_PATHS.allowLists, async (request) => {
    authenticate(request, store.tokens, 'admin');
    return {
      allowLists: store.allowLists.list().map((l) => ({ vmUuid: l.vmUuid, entries: l.entries.map(entryToBody) })),
    };
  });

  return app;
}
