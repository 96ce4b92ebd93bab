/**
 * SSH access in the registry: a port per NIC on a network with SSH access,
 * stable while it is registered and across a restart, released (quarantined)
 * with it; refusals (ports exhausted, in use, sources outside the site) that
 * change nothing; per-VM sources narrowing the site's.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { Registry, type AuditEvent } from '../../../src/backend/service/registry.js';
import { openStore, type Store } from '../../../src/backend/store/store.js';
import { parseSite } from '../../../src/site/parse.js';
import type { Site } from '../../../src/site/model.js';
import { RecordingEnforcer } from '../../support/recording-enforcer.js';
import { settledCode as code } from '../../support/error-code.js';

const site = parseSite({
  networks: {
    secure: {
      preset: 'secure',
      ssh: { ports: '2200-2202', address: '203.0.113.1', sources: ['203.0.113.0/24', '198.51.100.0/24'] },
    },
    service: { preset: 'service', placement: 'trust-hosts' },
  },
});
const vm = (n: number) => `0b1d2c3e-0000-4000-8000-00000000000${n}`;
const mac = (n: number) => `52:54:00:00:00:0${n}`;
const nic = (n: number, network = 'secure') => ({ vmUuid: vm(n), vmName: `vm${n}`, mac: mac(n), network });
const MIN = 60_000;

let store: Store;
let enforcer: RecordingEnforcer;
let registry: Registry;
let audits: AuditEvent[];
let clock: number;
let listening: Set<number>;

function start(on: Site = site): Promise<void> {
  registry = new Registry(on, store, enforcer, {
    audit: (e) => audits.push(e),
    now: () => clock,
    listeningPorts: async () => listening,
  });
  return registry.start();
}

beforeEach(async () => {
  store = openStore(':memory:');
  enforcer = new RecordingEnforcer();
  audits = [];
  clock = 1_000_000;
  listening = new Set();
  await start();
  for (const n of [1, 2, 3, 4, 5]) await registry.setPlacement(vm(n), ['kvm-1'], 'ops');
});

describe('SSH ports', () => {
  it('gives a registered NIC a port, the same on every register, in the answer and the enforced view', async () => {
    const first = await registry.register('kvm-1', nic(1), 1);
    expect(first.ssh).toEqual({ port: 2200, address: '203.0.113.1' });
    const again = await registry.register('kvm-1', nic(1), 2);
    expect(again).toMatchObject({ status: 'unchanged', ssh: { port: 2200 } });
    const change = enforcer.changes.at(-1);
    expect(change?.after[0]?.ssh).toEqual({
      port: 2200,
      sources: ['203.0.113.0/24', '198.51.100.0/24'],
      narrowed: false,
    });
    expect((await registry.register('kvm-1', nic(6, 'service'), 1)).ssh).toBeUndefined();
  });

  it('keeps the ports across a restart: the rebuild enforces them', async () => {
    await registry.register('kvm-1', nic(1), 1);
    await registry.register('kvm-1', nic(2), 1);
    await start();
    expect(enforcer.rebuilds.at(-1)?.ssh).toEqual([
      { network: 'secure', mac: mac(1), port: 2200, sources: ['203.0.113.0/24', '198.51.100.0/24'], narrowed: false },
      { network: 'secure', mac: mac(2), port: 2201, sources: ['203.0.113.0/24', '198.51.100.0/24'], narrowed: false },
    ]);
  });

  it('releases the port with the registration; the same VM gets it back, another only after the quarantine', async () => {
    await registry.register('kvm-1', nic(1), 1);
    await registry.register('kvm-1', nic(2), 1);
    await registry.register('kvm-1', nic(3), 1);
    await registry.deregister('kvm-1', { network: 'secure', mac: mac(1) }, 2);
    expect(enforcer.changes.at(-1)?.before[0]?.ssh?.port).toBe(2200);
    expect(registry.sshForwards().map((f) => f.port)).toEqual([2201, 2202]);
    expect(await code(registry.register('kvm-1', nic(4), 1))).toBe('E_SSH_PORTS_EXHAUSTED');
    expect((await registry.register('kvm-1', nic(1), 3)).ssh?.port).toBe(2200);
    await registry.deregister('kvm-1', { network: 'secure', mac: mac(1) }, 4);
    clock += 60 * MIN;
    expect((await registry.register('kvm-1', nic(4), 1)).ssh?.port).toBe(2200);
  });

  it('refuses a registration with no port left, changing nothing: E_SSH_PORTS_EXHAUSTED', async () => {
    for (const n of [1, 2, 3]) await registry.register('kvm-1', nic(n), 1);
    const changes = enforcer.changes.length;
    const before = JSON.stringify([store.registrations.list(), store.sshPorts.list()]);
    const refused = registry.register('kvm-1', nic(4), 1);
    await expect(refused).rejects.toMatchObject({
      code: 'E_SSH_PORTS_EXHAUSTED',
      message: `No SSH port for ${mac(4)} on network secure: all 3 of ports 2200-2202 are held by registered NICs (3) or in quarantine (0)`,
    });
    expect(enforcer.changes.length).toBe(changes);
    expect(JSON.stringify([store.registrations.list(), store.sshPorts.list()])).toBe(before);
  });

  it('skips ports other programs listen on; refuses with E_SSH_PORT_IN_USE when only those are left', async () => {
    listening = new Set([2200, 2202]);
    expect((await registry.register('kvm-1', nic(1), 1)).ssh?.port).toBe(2201);
    await expect(registry.register('kvm-1', nic(2), 1)).rejects.toMatchObject({ code: 'E_SSH_PORT_IN_USE' });
    expect(store.registrations.get('secure', mac(2))).toBeUndefined();
  });

  it('leaves out, alone, the NICs of a reconcile that get no port; the rest are registered', async () => {
    listening = new Set([2202]);
    const answer = await registry.reconcile('kvm-1', [nic(1), nic(2), nic(3)], 1);
    expect(answer.added.map((r) => r.mac)).toEqual([mac(1), mac(2)]);
    expect(answer.refused).toEqual([{ ...nic(3), code: 'E_SSH_PORT_IN_USE' }]);
    expect(store.registrations.get('secure', mac(3))).toBeUndefined();
  });

  it('gives existing NICs ports when the site turns SSH access on, and drops them when it turns it off', async () => {
    await registry.register('kvm-1', nic(6, 'service'), 1);
    const on = parseSite({
      networks: { secure: { preset: 'secure', ssh: { enabled: false } }, service: { preset: 'service', ssh: {} } },
    });
    await start(on);
    expect(enforcer.rebuilds.at(-1)?.ssh).toEqual([
      { network: 'service', mac: mac(6), port: 22000, sources: ['0.0.0.0/0'], narrowed: false },
    ]);
    await start(parseSite({ networks: { secure: { preset: 'secure' }, service: { preset: 'service' } } }));
    expect(enforcer.rebuilds.at(-1)?.ssh).toEqual([]);
    expect(store.sshPorts.list()).toEqual([]);
  });
});

describe('SSH sources', () => {
  it("narrows a VM's client networks within the site's, per NIC; reset gives it the site's again", async () => {
    await registry.register('kvm-1', nic(1), 1);
    const narrowed = await registry.setSshSources(vm(1), ['203.0.113.7/32', '198.51.100.0/25'], 'ops');
    expect(narrowed).toMatchObject({ vmUuid: vm(1), sources: ['203.0.113.7/32', '198.51.100.0/25'] });
    expect(narrowed.forwards[0]).toMatchObject({ port: 2200, narrowed: true, ip: expect.any(String) });
    const change = enforcer.changes.at(-1);
    expect(change?.before[0]?.ssh?.narrowed).toBe(false);
    expect(change?.after[0]?.ssh).toEqual({
      port: 2200,
      sources: ['203.0.113.7/32', '198.51.100.0/25'],
      narrowed: true,
    });
    expect(audits.at(-1)).toMatchObject({ event: 'ssh', actor: 'ops', vmUuid: vm(1), sourcesBefore: 'site' });
    const reset = await registry.setSshSources(vm(1), undefined, 'ops');
    expect(reset.sources).toBeNull();
    expect(enforcer.changes.at(-1)?.after[0]?.ssh?.narrowed).toBe(false);
  });

  it('refuses sources outside the site, changing nothing: E_SSH_SOURCES_OUTSIDE', async () => {
    await registry.register('kvm-1', nic(1), 1);
    const changes = enforcer.changes.length;
    await expect(registry.setSshSources(vm(1), ['203.0.113.0/24', '192.0.2.0/24'], 'ops')).rejects.toMatchObject({
      code: 'E_SSH_SOURCES_OUTSIDE',
      message:
        'SSH sources: expected client networks inside what the site allows (networks.secure.ssh.sources 203.0.113.0/24, 198.51.100.0/24), found 192.0.2.0/24',
    });
    expect(enforcer.changes.length).toBe(changes);
    expect(store.sshSources.get(vm(1))).toBeUndefined();
  });

  it('rolls the sources back when enforcing fails', async () => {
    await registry.register('kvm-1', nic(1), 1);
    enforcer.failNext = true;
    await expect(registry.setSshSources(vm(1), ['203.0.113.0/24'], 'ops')).rejects.toThrow('enforcement failed');
    expect(store.sshSources.get(vm(1))).toBeUndefined();
  });

  it('lists forwards per VM, per host and all', async () => {
    await registry.register('kvm-1', nic(1), 1);
    await registry.register('kvm-2', nic(6, 'service'), 1);
    expect(registry.sshForwards()).toEqual([
      {
        vmUuid: vm(1),
        vmName: 'vm1',
        network: 'secure',
        mac: mac(1),
        ip: store.registrations.get('secure', mac(1))?.ip,
        port: 2200,
        address: '203.0.113.1',
        sources: ['203.0.113.0/24', '198.51.100.0/24'],
        narrowed: false,
      },
    ]);
    expect(registry.sshForwards({ hostId: 'kvm-2' })).toEqual([]);
    expect(registry.vmSsh(vm(1)).forwards).toHaveLength(1);
    expect(registry.vmSsh(vm(2))).toEqual({ vmUuid: vm(2), sources: null, forwards: [] });
  });
});
