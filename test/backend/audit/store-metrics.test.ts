import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/backend/audit/day-store.js';
import { registerAuditStoreMetrics } from '../../../src/backend/audit/store-metrics.js';
import { flow, tempStore } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('audit store metrics', () => {
  it('exposes the counters and the chain head seq at each scrape', async () => {
    const temp = await tempStore();
    cleanups.push(temp.cleanup);
    const store = await AuditStore.open({ settings: temp.settings });
    const registry = new Registry();
    registerAuditStoreMetrics(registry, store);
    await store.append([flow(1), flow(2)]);
    await store.append([flow(3)]);
    const text = await registry.metrics();
    expect(text).toMatch(/^ticrypt_audit_records_stored_total 3$/m);
    expect(text).toMatch(/^ticrypt_audit_store_batches_total 2$/m);
    expect(text).toMatch(/^ticrypt_audit_store_fsyncs_total 2$/m);
    expect(text).toMatch(/^ticrypt_audit_store_failures_total 0$/m);
    expect(text).toMatch(/^ticrypt_audit_chain_seq 3$/m);
    await store.close();
    expect(await registry.metrics()).toMatch(/^ticrypt_audit_store_failures_total 0$/m);
  });
});
