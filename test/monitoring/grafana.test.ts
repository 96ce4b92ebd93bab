import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataPlaneMetrics } from '../../src/backend/api/dataplane-metrics.js';
import { Metrics } from '../../src/backend/api/metrics.js';
import { DnsMetrics } from '../../src/backend/dns/metrics.js';
import type { Opener } from '../../src/backend/dns/opener.js';
import { defaultSite } from '../../src/site/parse.js';

const DASHBOARD = resolve(import.meta.dirname, '../../monitoring/grafana/ticrypt-net.json');

/** Every metric name the backend's registry exports (as the daemon builds it). */
async function exported(): Promise<Set<string>> {
  const metrics = new Metrics();
  new DataPlaneMetrics(metrics.registry, defaultSite(), {
    counters: async () => new Map(),
    conntrack: async () => ({ count: 0, max: 1 }),
    census: () => ({ vmsByNetwork: new Map(), byHost: new Map(), sshForwardsByNetwork: new Map() }),
  });
  const opener = { stats: { opened: 0, skipped: 0, closed: 0, transactions: 0, failures: 0 }, size: 0 };
  new DnsMetrics(metrics.registry, opener as unknown as Opener);
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram')
      for (const part of ['bucket', 'sum', 'count']) names.add(`${metric.name}_${part}`);
  }
  return names;
}

/** Every PromQL expression of the dashboard: the panels' targets and the template variables' queries. */
function expressions(dashboard: {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { query?: unknown; definition?: string }[] };
}): string[] {
  return [
    ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.definition === undefined ? [] : [v.definition])),
  ];
}

describe('the Grafana dashboard', () => {
  it('is built only on metrics the backend exports, and shows the data plane of each network', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8'));
    const names = await exported();
    const exprs = expressions(dashboard);
    const used = new Set(exprs.flatMap((e: string) => e.match(/\bticrypt_[a-z_]+/g) ?? []));
    expect(exprs.length).toBeGreaterThan(10);
    expect([...used].filter((name) => !names.has(name))).toEqual([]);
    for (const name of [
      'ticrypt_accepted_packets_total',
      'ticrypt_dropped_packets_total',
      'ticrypt_flows_total',
      'ticrypt_conntrack_fill_ratio',
      'ticrypt_registered_vms',
      'ticrypt_host_registered_vms',
      'ticrypt_dns_queries_total',
      'ticrypt_ssh_forwards',
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  });

  it('has a unique id for every panel', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: { id: number }[] };
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
