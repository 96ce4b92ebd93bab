import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnforcedChange, EnforcedState, Enforcer, NicView } from '../../../src/backend/service/enforcer.js';
import { Registry } from '../../../src/backend/service/registry.js';
import { openStore } from '../../../src/backend/store/store.js';
import type { AllowEntry } from '../../../src/protocol/api.js';
import { parseSite } from '../../../src/site/parse.js';

/** What the kernel and dnsmasq hold of a NIC: everything but the generation, which only orders events. */
const enforced = (nic: NicView) => ({ ...nic, registration: { ...nic.registration, generation: 0 } });

/** Applies each change to a model of the kernel, the way the real enforcer's deltas do. */
class ModelEnforcer implements Enforcer {
  nics = new Map<string, NicView>();
  async rebuild(state: EnforcedState) {
    const entries = new Map(state.allowLists.map((l) => [l.vmUuid, l.entries]));
    const ssh = new Map(state.ssh.map(({ network, mac, ...own }) => [`${network}/${mac}`, own]));
    this.nics = new Map(
      state.registrations.map((r) => {
        const key = `${r.network}/${r.mac}`;
        const own = ssh.get(key);
        return [key, enforced({ registration: r, entries: entries.get(r.vmUuid) ?? [], ...(own ? { ssh: own } : {}) })];
      }),
    );
  }
  async change(change: EnforcedChange) {
    for (const nic of change.before) {
      const key = `${nic.registration.network}/${nic.registration.mac}`;
      expect(this.nics.get(key)).toEqual(enforced(nic)); // the registry's "before" is what the kernel holds
      this.nics.delete(key);
    }
    for (const nic of change.after) this.nics.set(`${nic.registration.network}/${nic.registration.mac}`, enforced(nic));
  }
}

const vms = ['a', 'b', 'c'].map((x) => `0b1d2c3e-0000-4000-8000-00000000000${x}`);
const macs = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03', '52:54:00:00:00:04'];
const allowSets: AllowEntry[][] = [
  [],
  [{ type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } }],
  [
    { type: 'domain', domain: 'pypi.org', protocol: 'tcp' },
    { type: 'domain', domain: 'files.example.org', protocol: 'any' },
    { type: 'address', address: '203.0.113.0/24', protocol: 'udp', ports: { from: 5000, to: 5100 } },
  ],
];

const op = fc.oneof(
  fc.record({
    kind: fc.constant('register'),
    host: fc.constantFrom('h1', 'h2'),
    vm: fc.nat(2),
    mac: fc.nat(3),
    network: fc.constantFrom('secure', 'service'),
    gen: fc.nat(20),
  }),
  fc.record({
    kind: fc.constant('deregister'),
    host: fc.constantFrom('h1', 'h2'),
    mac: fc.nat(3),
    network: fc.constantFrom('secure', 'service'),
    gen: fc.nat(20),
  }),
  fc.record({
    kind: fc.constant('reconcile'),
    host: fc.constantFrom('h1', 'h2'),
    nics: fc.array(fc.record({ vm: fc.nat(2), mac: fc.nat(3) }), { maxLength: 3 }),
    gen: fc.nat(20),
  }),
  fc.record({ kind: fc.constant('allow'), vm: fc.nat(2), set: fc.nat(2) }),
  fc.record({
    kind: fc.constant('place'),
    vm: fc.nat(2),
    hosts: fc.subarray(['h1', 'h2']),
  }),
  fc.record({ kind: fc.constant('sweep'), minutes: fc.nat(20) }),
  fc.record({
    kind: fc.constant('ssh sources'),
    vm: fc.nat(2),
    sources: fc.option(fc.subarray(['203.0.113.0/24', '203.0.113.7/32', '198.51.100.0/22', '192.0.2.0/24']), {
      nil: undefined,
    }),
  }),
  fc.record({ kind: fc.constant('restart') }),
);

/**
 * Small caps, so random sequences reach them; secure enforces placement, service trusts hosts; SSH access on
 * both, three ports each (one of the secure ones taken by another program), so ports run out and come back.
 */
const site = parseSite({
  backend: { registrations: { perHost: 3, perVm: 2, expireAfter: '10m', expireGrace: '5m' } },
  networks: {
    secure: { preset: 'secure', ssh: { ports: '2200-2203', sources: ['203.0.113.0/24', '198.51.100.0/24'] } },
    service: { preset: 'service', placement: 'trust-hosts', ssh: { ports: '3300-3302', quarantine: '5m' } },
  },
});
const LISTENING: ReadonlySet<number> = new Set([2201]);
const REFUSED = [
  'E_MAC_CONFLICT',
  'E_NOT_PLACED',
  'E_QUOTA_EXCEEDED',
  'E_SSH_PORTS_EXHAUSTED',
  'E_SSH_SOURCES_OUTSIDE',
];

describe('Registry', () => {
  it('sends changes whose composition always equals the store (random operation sequences)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const store = openStore(':memory:');
        const kernel = new ModelEnforcer();
        let clock = 1_000_000;
        const options = { now: () => clock, listeningPorts: async () => LISTENING };
        let registry = new Registry(site, store, kernel, options);
        await registry.start();
        for (const o of ops) {
          try {
            if (o.kind === 'register') {
              await registry.register(
                o.host,
                { vmUuid: vms[o.vm]!, vmName: 'vm', mac: macs[o.mac]!, network: o.network },
                o.gen,
              );
            } else if (o.kind === 'deregister') {
              await registry.deregister(o.host, { network: o.network, mac: macs[o.mac]! }, o.gen);
            } else if (o.kind === 'reconcile') {
              const nics = o.nics.map((n) => ({
                vmUuid: vms[n.vm]!,
                vmName: 'vm',
                mac: macs[n.mac]!,
                network: 'secure',
              }));
              const unique = [...new Map(nics.map((n) => [n.mac, n])).values()];
              await registry.reconcile(o.host, unique, o.gen);
            } else if (o.kind === 'allow') {
              await registry.setAllowList(vms[o.vm]!, allowSets[o.set]!, 'ops');
            } else if (o.kind === 'place') {
              await registry.setPlacement(vms[o.vm]!, o.hosts, 'ops');
            } else if (o.kind === 'sweep') {
              clock += o.minutes * 60_000;
              await registry.sweep();
            } else if (o.kind === 'ssh sources') {
              await registry.setSshSources(vms[o.vm]!, o.sources, 'ops');
            } else {
              registry = new Registry(site, store, kernel, options);
              await registry.start();
            }
          } catch (error) {
            expect(REFUSED).toContain((error as { code?: string }).code);
          }
        }
        // The trust rules hold whatever happened: placement on the enforcing network, the caps, unique NIC ids.
        const all = store.registrations.list();
        for (const r of all.filter((r) => r.network === 'secure')) {
          expect(store.placements.get(r.vmUuid)).toContain(r.hostId);
        }
        for (const count of store.registrations.countByHost().values()) expect(count).toBeLessThanOrEqual(3);
        for (const vm of vms) expect(store.registrations.countOfVm(vm)).toBeLessThanOrEqual(2);
        expect(new Set(all.map((r) => r.nicId)).size).toBe(all.length);
        const counted = [...registry.registrationCounts()].filter(([, n]) => n !== 0);
        expect(Object.fromEntries(counted)).toEqual(Object.fromEntries(store.registrations.countByNetwork()));
        const expected = new ModelEnforcer();
        // SSH: every registered NIC holds one port of its network's range, none another program listens on;
        // no port is held by a NIC that is not registered.
        const held = store.sshPorts.list();
        expect(held.map((p) => `${p.network}/${p.mac}`).sort()).toEqual(all.map((r) => `${r.network}/${r.mac}`).sort());
        for (const p of held) {
          expect(p.port).toBeGreaterThanOrEqual(p.network === 'secure' ? 2200 : 3300);
          expect(p.port).toBeLessThanOrEqual(p.network === 'secure' ? 2203 : 3302);
          expect(LISTENING.has(p.port)).toBe(false);
        }
        await expected.rebuild({
          registrations: store.registrations.list(),
          allowLists: store.allowLists.list(),
          ssh: registry.sshForwards().map((f) => ({
            network: f.network,
            mac: f.mac,
            port: f.port,
            sources: f.sources,
            narrowed: f.narrowed,
          })),
        });
        expect(kernel.nics).toEqual(expected.nics);
        store.close();
      }),
      { numRuns: 300 },
    );
  });
});
