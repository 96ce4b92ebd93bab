import type { FastifyInstance } from 'fastify';
import { Metrics } from '../../src/backend/api/metrics.js';
import { buildApi } from '../../src/backend/api/server.js';
import type { Enforcer } from '../../src/backend/service/enforcer.js';
import { Registry, type AuditEvent } from '../../src/backend/service/registry.js';
import { openStore, type Store } from '../../src/backend/store/store.js';
import type { Site } from '../../src/site/model.js';
import { defaultSite } from '../../src/site/parse.js';
import type { Refusal } from '../backend/api/refusals.js';

/** A backend wired for tests: store, registry over `enforcer`, API (not listening), and tokens. */
export interface BackendFixture {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly registry: Registry;
  readonly tokens: { host: string; otherHost: string; admin: string; metrics: string };
  /** Every audit line the registry and the API wrote, in order. */
  readonly audits: AuditEvent[];
  /** Send a request with one of the fixture's tokens (or none). */
  call(
    method: string,
    url: string,
    auth: Refusal['auth'],
    body?: unknown,
    raw?: string,
  ): Promise<{ status: number; json: any }>;
  /** Place a VM on hosts (the VM launcher's call, with the admin token); throws unless 200. */
  place(vmUuid: string, hosts: readonly string[]): Promise<void>;
}

export async function backendFixture(
  enforcer: Enforcer,
  site: Site = defaultSite(),
  path = ':memory:',
): Promise<BackendFixture> {
  const store = openStore(path);
  const audits: AuditEvent[] = [];
  const registry = new Registry(site, store, enforcer, { audit: (event) => audits.push(event) });
  await registry.start();
  const tokens = {
    host: store.tokens.issue({ name: 'kvm-1', role: 'host' }),
    otherHost: store.tokens.issue({ name: 'kvm-2', role: 'host' }),
    admin: store.tokens.issue({ name: 'ops', role: 'admin' }),
    metrics: store.tokens.issue({ name: 'prometheus', role: 'metrics' }),
  };
  const app = buildApi({
    registry,
    store,
    metrics: new Metrics(),
    audit: (event) => audits.push(event),
    rateLimits: site.backend.api,
    allowListLimits: site.backend.allowLists,
    domainsResolvable: site.backend.upstreamDns.length > 0,
  });
  const header = (auth: Refusal['auth']): Record<string, string> => {
    switch (auth) {
      case 'host':
        return { authorization: `Bearer ${tokens.host}` };
      case 'other-host':
        return { authorization: `Bearer ${tokens.otherHost}` };
      case 'admin':
        return { authorization: `Bearer ${tokens.admin}` };
      case 'metrics':
        return { authorization: `Bearer ${tokens.metrics}` };
      case 'forged':
        return { authorization: `Bearer kvm-1.${'A'.repeat(43)}` };
      case 'malformed':
        return { authorization: `Token ${tokens.host}` };
      case 'none':
        return {};
    }
  };
  const fixture: BackendFixture = {
    app,
    store,
    registry,
    tokens,
    audits,
    async place(vmUuid, hosts) {
      const { status, json } = await fixture.call('PUT', `/v1/vms/${vmUuid}/placement`, 'admin', { hosts });
      if (status !== 200) throw new Error(`placement of ${vmUuid} refused: ${JSON.stringify(json)}`);
    },
    async call(method, url, auth, body, raw) {
      const response = await app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...header(auth),
          ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(raw !== undefined ? { payload: raw } : body !== undefined ? { payload: JSON.stringify(body) } : {}),
      });
      return { status: response.statusCode, json: response.body ? JSON.parse(response.body) : undefined };
    },
  };
  return fixture;
}
