import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { DataPlaneMetrics, type DataPlaneSources } from '../../../src/backend/api/dataplane-metrics.js';
import { counterNames } from '../../../src/backend/nft/counter-table.js';
import type { CounterValue } from '../../../src/backend/nft/counters.js';
import { CensusQueries, type Census } from '../../../src/backend/store/census.js';
import { openStore } from '../../../src/backend/store/store.js';
import { findNetwork } from '../../../src/site/lookup.js';
import { defaultSite } from '../../../src/site/parse.js';

const site = defaultSite();
const EMPTY_CENSUS: Census = { vmsByNetwork: new Map(), byHost: new Map(), sshForwardsByNetwork: new Map() };

/** Sources whose counters are all zero but those given, counting how often each is read. */
function fakeSources(values: Record<string, CounterValue>, census: Census = EMPTY_CENSUS) {
  const reads = { counters: 0, conntrack: 0 };
  let failing = false;
  const sources: DataPlaneSources = {
    counters: async () => {
      reads.counters += 1;
      if (failing) throw new Error('nft: No such file or directory');
      return new Map(counterNames(site).map((name) => [name, values[name] ?? { packets: 0, bytes: 0 }]));
    },
    conntrack: async () => {
      reads.conntrack += 1;
      return { count: 300, max: 1200 };
    },
    census: () => census,
  };
  return { sources, reads, fail: (on: boolean) => (failing = on) };
}

const line = (text: string, start: string) => text.split('\n').find((l) => l.startsWith(start));

describe('data-plane metrics', () => {
  it('gives each network its accepted packets and bytes each way, its flows and its drops by reason', async () => {
    const registry = new Registry();
    const { sources } = fakeSources({
      'accepted_from_vms.secure': { packets: 50, bytes: 4200 },
      'accepted_to_vms.secure': { packets: 50, bytes: 4200 },
      'accepted_to_gateway.service': { packets: 3, bytes: 180 },
      'flows_from_vms.secure': { packets: 1, bytes: 84 },
      'dropped_egress.secure': { packets: 30, bytes: 2520 },
      dropped_egress: { packets: 30, bytes: 2520 },
      dropped_unregistered_secure: { packets: 4, bytes: 240 },
      dropped_spoofed_other: { packets: 2, bytes: 120 },
    });
    new DataPlaneMetrics(registry, site, sources);
    const text = await registry.metrics();
    expect(line(text, 'ticrypt_accepted_packets_total{network="secure",direction="from_vms"}')).toMatch(/ 50$/);
    expect(line(text, 'ticrypt_accepted_bytes_total{network="secure",direction="to_vms"}')).toMatch(/ 4200$/);
    expect(line(text, 'ticrypt_accepted_packets_total{network="service",direction="to_gateway"}')).toMatch(/ 3$/);
    expect(line(text, 'ticrypt_flows_total{network="secure",direction="from_vms"}')).toMatch(/ 1$/);
    expect(line(text, 'ticrypt_dropped_packets_total{network="secure",reason="egress"}')).toMatch(/ 30$/);
    expect(line(text, 'ticrypt_dropped_bytes_total{network="secure",reason="egress"}')).toMatch(/ 2520$/);
    expect(line(text, 'ticrypt_dropped_packets_total{network="secure",reason="unregistered"}')).toMatch(/ 4$/);
    expect(line(text, 'ticrypt_dropped_packets_total{network="service",reason="egress"}')).toMatch(/ 0$/);
    // An open network has no unregistered counter: no series rather than a false zero.
    expect(line(text, 'ticrypt_dropped_packets_total{network="service",reason="unregistered"}')).toBeUndefined();
    expect(line(text, 'ticrypt_table_counter_packets_total{counter="dropped_spoofed_other"}')).toMatch(/ 2$/);
    expect(line(text, 'ticrypt_conntrack_entries ')).toBe('ticrypt_conntrack_entries 300');
    expect(line(text, 'ticrypt_conntrack_fill_ratio ')).toBe('ticrypt_conntrack_fill_ratio 0.25');
  });

  it('reads the sources once for scrapes within the cache time, then refreshes in the background', async () => {
    const registry = new Registry();
    const { sources, reads } = fakeSources({});
    let now = 0;
    new DataPlaneMetrics(registry, site, sources, { cacheMs: 1000, now: () => now });
    await Promise.all([registry.metrics(), registry.metrics()]);
    expect(reads).toEqual({ counters: 1, conntrack: 1 });
    now = 999;
    await registry.metrics();
    expect(reads.counters).toBe(1);
    now = 1000;
    const served = await registry.metrics();
    expect(reads.counters).toBe(2);
    // This scrape served the snapshot taken at 0; the one it started is served next.
    expect(line(served, 'ticrypt_dataplane_age_seconds ')).toBe('ticrypt_dataplane_age_seconds 1');
    expect(line(await registry.metrics(), 'ticrypt_dataplane_age_seconds ')).toBe('ticrypt_dataplane_age_seconds 0');
    expect(reads.counters).toBe(2);
  });

  it('keeps the last values when nft fails, and counts the failure', async () => {
    const registry = new Registry();
    const { sources, fail } = fakeSources({ 'dropped_egress.secure': { packets: 30, bytes: 2520 } });
    let now = 0;
    new DataPlaneMetrics(registry, site, sources, { cacheMs: 10, now: () => now });
    await registry.metrics();
    fail(true);
    now = 100;
    await registry.metrics(); // starts the failing reading
    const text = await registry.metrics();
    expect(line(text, 'ticrypt_dropped_packets_total{network="secure",reason="egress"}')).toMatch(/ 30$/);
    expect(line(text, 'ticrypt_dataplane_read_errors_total{source="nft"}')).toMatch(/ 1$/);
  });

  describe('the store census', () => {
    let dir = '';
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('counts VMs per network, NICs and VMs per host, and SSH forwards held per network', async () => {
      dir = await mkdtemp(join(tmpdir(), 'census-'));
      const store = openStore(join(dir, 'store.db'));
      const put = (i: number, host: string, vm: string, network: string) =>
        store.registrations.put({
          hostId: host,
          vmUuid: vm,
          vmName: vm,
          mac: `52:54:00:00:00:${i.toString(16).padStart(2, '0')}`,
          network,
          ip: `10.0.0.${i}`,
          generation: 1,
          nicId: i,
        });
      put(1, 'kvm-1', 'vm-a', 'secure');
      put(2, 'kvm-1', 'vm-a', 'service');
      put(3, 'kvm-1', 'vm-b', 'secure');
      put(4, 'kvm-2', 'vm-c', 'secure');
      const secure = findNetwork(site, 'secure');
      if (secure.ssh === undefined) throw new Error('the default secure network has SSH access');
      store.sshPorts.allocate(
        { ...secure, ssh: secure.ssh },
        { mac: '52:54:00:00:00:01', vmUuid: 'vm-a' },
        0,
        () => false,
      );
      const census = new CensusQueries(store.db).take();
      store.close();
      expect(census.vmsByNetwork).toEqual(
        new Map([
          ['secure', 3],
          ['service', 1],
        ]),
      );
      expect(census.byHost).toEqual(
        new Map([
          ['kvm-1', { nics: 3, vms: 2 }],
          ['kvm-2', { nics: 1, vms: 1 }],
        ]),
      );
      expect(census.sshForwardsByNetwork).toEqual(new Map([['secure', 1]]));

      const registry = new Registry();
      new DataPlaneMetrics(registry, site, fakeSources({}, census).sources);
      const text = await registry.metrics();
      expect(line(text, 'ticrypt_registered_vms{network="secure"}')).toMatch(/ 3$/);
      expect(line(text, 'ticrypt_registered_vms{network="datain"}')).toMatch(/ 0$/);
      expect(line(text, 'ticrypt_host_registrations{host="kvm-1"}')).toMatch(/ 3$/);
      expect(line(text, 'ticrypt_host_registered_vms{host="kvm-1"}')).toMatch(/ 2$/);
      expect(line(text, 'ticrypt_ssh_forwards{network="secure"}')).toMatch(/ 1$/);
    });
  });
});
