/**
 * The registry's trust rules, one at a time: placement, no takeover by
 * reconcile, caps, expiry of silent hosts, tombstones only for held NICs
 * and their pruning. (The property test in registry.test.ts mixes them.)
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { Registry, type AuditEvent } from '../../../src/backend/service/registry.js';
import { openStore, type Store } from '../../../src/backend/store/store.js';
import { parseSite } from '../../../src/site/parse.js';
import { RecordingEnforcer } from '../../support/recording-enforcer.js';
import { settledCode as code } from '../../support/error-code.js';

const site = parseSite({
  backend: {
    registrations: { perHost: 3, perVm: 2, expireAfter: '10m', expireGrace: '5m', tombstoneRetention: '1h' },
  },
  networks: { secure: { preset: 'secure' }, service: { preset: 'service', placement: 'trust-hosts' } },
});
const A = '0b1d2c3e-0000-4000-8000-00000000000a';
const B = '0b1d2c3e-0000-4000-8000-00000000000b';
const nic = (vmUuid: string, mac: string, network = 'secure') => ({ vmUuid, vmName: 'vm', mac, network });
const MIN = 60_000;

let store: Store;
let enforcer: RecordingEnforcer;
let registry: Registry;
let audits: AuditEvent[];
let clock: number;

beforeEach(async () => {
  store = openStore(':memory:');
  enforcer = new RecordingEnforcer();
  audits = [];
  clock = 1_000_000;
  registry = new Registry(site, store, enforcer, { audit: (e) => audits.push(e), now: () => clock });
  await registry.start();
});

describe('placement', () => {
  it('lets only a placed host register on an enforcing network; any host on a trusting one', async () => {
    expect(await code(registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1))).toBe('E_NOT_PLACED');
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    expect(await code(registry.register('kvm-2', nic(A, '52:54:00:00:00:01'), 1))).toBe('E_NOT_PLACED');
    expect(await code(registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1))).toBe('ok');
    expect(await code(registry.register('kvm-2', nic(B, '52:54:00:00:00:02', 'service'), 1))).toBe('ok');
  });

  it('lets a placed destination take a migrating VM over; the source keeps nothing afterwards', async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    const first = await registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1);
    await registry.setPlacement(A, ['kvm-1', 'kvm-2'], 'ops');
    const moved = await registry.register('kvm-2', nic(A, '52:54:00:00:00:01'), 1);
    expect(moved.registration).toMatchObject({ hostId: 'kvm-2', nicId: first.registration?.nicId });
    // The source's periodic reconcile during the migration cannot take it back.
    const back = await registry.reconcile('kvm-1', [nic(A, '52:54:00:00:00:01')], 5);
    expect(back.heldElsewhere).toHaveLength(1);
    expect(store.registrations.get('secure', '52:54:00:00:00:01')?.hostId).toBe('kvm-2');
    // Nor can its late stop remove it.
    expect(await registry.deregister('kvm-1', { network: 'secure', mac: '52:54:00:00:00:01' }, 6)).toEqual({
      status: 'kept-other-host',
    });
    await registry.setPlacement(A, ['kvm-2'], 'ops');
    expect(store.registrations.get('secure', '52:54:00:00:00:01')?.hostId).toBe('kvm-2');
  });

  it('revokes the registrations of a host removed from the placement, on enforcing networks only', async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    await registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1);
    await registry.register('kvm-1', nic(A, '52:54:00:00:00:02', 'service'), 1);
    const result = await registry.setPlacement(A, [], 'ops');
    expect(result.revoked.map((r) => r.mac)).toEqual(['52:54:00:00:00:01']);
    expect(store.registrations.list().map((r) => r.network)).toEqual(['service']);
    expect(enforcer.changes.at(-1)?.before.map((n) => n.registration.mac)).toEqual(['52:54:00:00:00:01']);
    expect(audits.at(-1)).toMatchObject({ event: 'placement', vmUuid: A, before: ['kvm-1'], after: [] });
  });

  it('leaves out of a reconcile the NICs of VMs not placed on the host, and says so', async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    const result = await registry.reconcile('kvm-1', [nic(A, '52:54:00:00:00:01'), nic(B, '52:54:00:00:00:02')], 1);
    expect(result.added.map((r) => r.mac)).toEqual(['52:54:00:00:00:01']);
    expect(result.refused).toEqual([{ ...nic(B, '52:54:00:00:00:02'), code: 'E_NOT_PLACED' }]);
  });
});

describe('caps', () => {
  it('refuses a VM its third NIC and a host its fourth registration, in edge calls and reconciles', async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    await registry.setPlacement(B, ['kvm-1'], 'ops');
    await registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1);
    await registry.register('kvm-1', nic(A, '52:54:00:00:00:02'), 1);
    expect(await code(registry.register('kvm-1', nic(A, '52:54:00:00:00:03'), 1))).toBe('E_QUOTA_EXCEEDED');
    await registry.register('kvm-1', nic(B, '52:54:00:00:00:04'), 1);
    expect(await code(registry.register('kvm-1', nic(B, '52:54:00:00:00:05'), 1))).toBe('E_QUOTA_EXCEEDED');
    // Re-registering what it holds is no new registration.
    expect(await code(registry.register('kvm-1', nic(B, '52:54:00:00:00:04'), 2))).toBe('ok');
    const reconciled = await registry.reconcile(
      'kvm-1',
      [
        nic(A, '52:54:00:00:00:01'),
        nic(A, '52:54:00:00:00:02'),
        nic(B, '52:54:00:00:00:04'),
        nic(B, '52:54:00:00:00:05'),
      ],
      3,
    );
    expect(reconciled.refused.map((n) => [n.mac, n.code])).toEqual([['52:54:00:00:00:05', 'E_QUOTA_EXCEEDED']]);
    expect(store.registrations.countOfHost('kvm-1')).toBe(3);
  });
});

describe('expiry and tombstones', () => {
  it("expires a silent host's registrations after expireAfter, not within the grace after start", async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    await registry.setPlacement(B, ['kvm-2'], 'ops');
    await registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1);
    await registry.register('kvm-2', nic(B, '52:54:00:00:00:02'), 1);
    clock += 4 * MIN;
    expect(await registry.sweep()).toEqual({ hosts: [], removed: 0 });
    await registry.reconcile('kvm-2', [nic(B, '52:54:00:00:00:02')], 2);
    clock += 7 * MIN; // 11 min after start: kvm-1 never reconciled, kvm-2 did 7 min ago
    expect(await registry.sweep()).toEqual({ hosts: ['kvm-1'], removed: 1 });
    expect(store.registrations.list().map((r) => r.hostId)).toEqual(['kvm-2']);
    expect(audits.at(-1)).toMatchObject({ event: 'expire', hostId: 'kvm-1', lastReconcile: 'never since start' });
    clock += 4 * MIN;
    expect((await registry.sweep()).hosts).toEqual(['kvm-2']);
    // The host comes back: its next reconcile registers again.
    const back = await registry.reconcile('kvm-2', [nic(B, '52:54:00:00:00:02')], 3);
    expect(back.added).toHaveLength(1);
  });

  it('keeps tombstones only for NICs the host held, and prunes them after the retention', async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    await registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 1);
    for (let i = 0; i < 50; i++) {
      const mac = `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`;
      expect(await registry.deregister('kvm-2', { network: 'secure', mac }, 9)).toEqual({ status: 'absent' });
    }
    expect(await registry.deregister('kvm-2', { network: 'secure', mac: '52:54:00:00:00:01' }, 9)).toEqual({
      status: 'kept-other-host',
    });
    expect(store.deregistrations.size()).toBe(0);
    await registry.deregister('kvm-1', { network: 'secure', mac: '52:54:00:00:00:01' }, 2);
    expect(store.deregistrations.size()).toBe(1);
    clock += 61 * MIN;
    await registry.sweep();
    expect(store.deregistrations.size()).toBe(0);
    expect(audits.some((e) => e.event === 'prune' && e.tombstones === 1)).toBe(true);
  });
});

describe('NIC ids', () => {
  it('gives each new registration a new id and never reuses one soon', async () => {
    await registry.setPlacement(A, ['kvm-1'], 'ops');
    const ids: number[] = [];
    for (let g = 1; g <= 4; g++) {
      ids.push((await registry.register('kvm-1', nic(A, '52:54:00:00:00:01'), 2 * g)).registration!.nicId);
      await registry.deregister('kvm-1', { network: 'secure', mac: '52:54:00:00:00:01' }, 2 * g + 1);
    }
    expect(new Set(ids).size).toBe(4);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });
});
