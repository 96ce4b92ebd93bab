/**
 * Live migration at the registry: a register with the `incoming` marker
 * records the destination without taking the NIC, the source's late stop
 * hands it over, the destination's stop of a failed migration withdraws it;
 * and property tests over the orders in which two hosts' hook events (and
 * their retries, reconciles and the launcher's placements) can reach the
 * backend: exactly one holder at the end, the NIC never revoked and its id
 * never changed while the VM runs somewhere.
 */
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import type { EnforcedChange } from '../../../src/backend/service/enforcer.js';
import { Registry, type AuditEvent } from '../../../src/backend/service/registry.js';
import { openStore, type Store } from '../../../src/backend/store/store.js';
import { parseSite } from '../../../src/site/parse.js';
import { RecordingEnforcer } from '../../support/recording-enforcer.js';
import { settledCode as code } from '../../support/error-code.js';

const site = parseSite({
  networks: { secure: { preset: 'secure' }, service: { preset: 'service', placement: 'trust-hosts' } },
});
const VM = '0b1d2c3e-0000-4000-8000-00000000000a';
const OTHER = '0b1d2c3e-0000-4000-8000-00000000000b';
const MAC = '52:54:00:00:00:01';
const nic = (network = 'secure', vmUuid = VM, mac = MAC) => ({ vmUuid, vmName: 'vm', mac, network });
const key = (network = 'secure') => ({ network, mac: MAC });

/** The NICs a change took away (in `before`, not in `after`): revocations. */
const revokedBy = (change: EnforcedChange) => {
  const after = new Set(change.after.map((n) => `${n.registration.network}/${n.registration.mac}`));
  return change.before.filter((n) => !after.has(`${n.registration.network}/${n.registration.mac}`));
};

let store: Store;
let enforcer: RecordingEnforcer;
let registry: Registry;
let audits: AuditEvent[];

async function fresh(): Promise<void> {
  store = openStore(':memory:');
  enforcer = new RecordingEnforcer();
  audits = [];
  registry = new Registry(site, store, enforcer, { audit: (e) => audits.push(e) });
  await registry.start();
}

beforeEach(fresh);

describe('a live migration, step by step', () => {
  it('the destination is recorded as incoming (nothing enforced), the source stop hands the NIC over', async () => {
    await registry.setPlacement(VM, ['kvm-1'], 'launcher');
    const first = await registry.register('kvm-1', nic(), 10);
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    const changes = enforcer.changes.length;
    // Destination: migrate, start, started (before the memory copy; the guest still runs on kvm-1).
    const marked = await registry.register('kvm-2', nic(), 20, 'incoming');
    expect(marked.status).toBe('incoming');
    expect(marked.registration).toMatchObject({
      hostId: 'kvm-1',
      incomingHost: 'kvm-2',
      incomingGeneration: 20,
      ip: first.registration?.ip,
      nicId: first.registration?.nicId,
    });
    expect((await registry.register('kvm-2', nic(), 21, 'incoming')).status).toBe('incoming');
    expect((await registry.register('kvm-2', nic(), 20, 'incoming')).status).toBe('stale');
    expect(enforcer.changes).toHaveLength(changes); // the firewall keys on the NIC id: nothing to change
    // The source's periodic reconcile while the guest still runs there changes nothing.
    const during = await registry.reconcile('kvm-1', [nic()], 15);
    expect(during).toMatchObject({ added: [], removed: [] });
    // The source's late stop, 1-2 s after the guest resumed on kvm-2: handed over, nothing revoked.
    expect(await registry.deregister('kvm-1', key(), 30)).toEqual({ status: 'moved' });
    const after = store.registrations.get('secure', MAC);
    expect(after).toMatchObject({
      hostId: 'kvm-2',
      generation: 21,
      nicId: first.registration?.nicId,
      ip: first.registration?.ip,
    });
    expect(after?.incomingHost).toBeUndefined();
    for (const change of enforcer.changes) expect(revokedBy(change)).toEqual([]);
    // Its release (and a retry of its stop) change nothing; a late start of the source's is stale.
    expect(await registry.deregister('kvm-1', key(), 31)).toEqual({ status: 'kept-other-host' });
    expect((await registry.register('kvm-1', nic(), 25)).status).toBe('stale');
    // The launcher's placement on the destination alone keeps it.
    expect((await registry.setPlacement(VM, ['kvm-2'], 'launcher')).revoked).toEqual([]);
    expect(store.registrations.get('secure', MAC)?.hostId).toBe('kvm-2');
    expect(audits.find((a) => a.event === 'deregister' && a['outcome'] === 'moved')).toMatchObject({ to: 'kvm-2' });
  });

  it('a failed migration (the destination QEMU exits) withdraws the incoming record; the source keeps everything', async () => {
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    const first = await registry.register('kvm-1', nic(), 10);
    await registry.register('kvm-2', nic(), 20, 'incoming');
    expect(await registry.deregister('kvm-2', key(), 22)).toEqual({ status: 'withdrawn' });
    const kept = store.registrations.get('secure', MAC);
    expect(kept).toEqual(first.registration);
    // A spooled retry of the destination's start, delivered late, is stale (its stop is newer).
    expect((await registry.register('kvm-2', nic(), 21, 'incoming')).status).toBe('stale');
    expect(await registry.deregister('kvm-2', key(), 23)).toEqual({ status: 'kept-other-host' });
    // The source's libvirtd restart (reconnect) and its stop later work as without any migration.
    expect((await registry.register('kvm-1', nic(), 40)).status).toBe('unchanged');
    expect(await registry.deregister('kvm-1', key(), 50)).toEqual({ status: 'removed' });
    expect(enforcer.changes.flatMap(revokedBy).map((n) => n.registration.hostId)).toEqual(['kvm-1']);
  });

  it('a marked register needs the same placement as any register, and takes nothing on a trusting network either', async () => {
    await registry.setPlacement(VM, ['kvm-1'], 'launcher');
    await registry.register('kvm-1', nic(), 10);
    expect(await code(registry.register('kvm-2', nic(), 20, 'incoming'))).toBe('E_NOT_PLACED');
    expect(store.registrations.get('secure', MAC)?.incomingHost).toBeUndefined();
    await registry.register('kvm-1', nic('service'), 10);
    expect((await registry.register('kvm-2', nic('service'), 20, 'incoming')).status).toBe('incoming');
    expect(store.registrations.get('service', MAC)).toMatchObject({ hostId: 'kvm-1', incomingHost: 'kvm-2' });
  });

  it('without the marker, a placed destination takes the NIC over at once, as before', async () => {
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    const first = await registry.register('kvm-1', nic(), 10);
    await registry.register('kvm-2', nic(), 20, 'incoming');
    const taken = await registry.register('kvm-2', nic(), 21);
    expect(taken.registration).toMatchObject({ hostId: 'kvm-2', nicId: first.registration?.nicId });
    expect(taken.registration?.incomingHost).toBeUndefined();
  });

  it('a marked register of a NIC nobody holds registers it for the sender; a MAC of another VM is refused', async () => {
    await registry.setPlacement(VM, ['kvm-2'], 'launcher');
    expect((await registry.register('kvm-2', nic(), 20, 'incoming')).registration).toMatchObject({ hostId: 'kvm-2' });
    await registry.setPlacement(OTHER, ['kvm-3'], 'launcher');
    expect(await code(registry.register('kvm-3', nic('secure', OTHER), 5, 'incoming'))).toBe('E_MAC_CONFLICT');
  });

  it('the source reconcile without the NIC hands it over; the destination reconcile without it withdraws', async () => {
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    await registry.register('kvm-1', nic(), 10);
    await registry.register('kvm-2', nic(), 20, 'incoming');
    // A destination snapshot older than its marked register withdraws nothing.
    await registry.reconcile('kvm-2', [], 15);
    expect(store.registrations.get('secure', MAC)?.incomingHost).toBe('kvm-2');
    // The source's snapshot without the NIC (its stop lost): the VM left it, hand over.
    const moved = await registry.reconcile('kvm-1', [], 30);
    expect(moved).toMatchObject({ added: [], removed: [] });
    expect(store.registrations.get('secure', MAC)).toMatchObject({ hostId: 'kvm-2', generation: 20 });
    // Again, the other way: the destination's newer snapshot without the NIC withdraws its record.
    await registry.register('kvm-1', nic(), 40, 'incoming');
    expect(store.registrations.get('secure', MAC)).toMatchObject({ hostId: 'kvm-2', incomingHost: 'kvm-1' });
    await registry.reconcile('kvm-1', [], 50);
    expect(store.registrations.get('secure', MAC)).toMatchObject({ hostId: 'kvm-2' });
    expect(store.registrations.get('secure', MAC)?.incomingHost).toBeUndefined();
    for (const change of enforcer.changes) expect(revokedBy(change)).toEqual([]);
  });

  it('the placement decides: without the source it hands over to a placed incoming host, without the destination it withdraws', async () => {
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    await registry.register('kvm-1', nic(), 10);
    await registry.register('kvm-2', nic(), 20, 'incoming');
    const back = await registry.setPlacement(VM, ['kvm-1'], 'launcher');
    expect(back.revoked).toEqual([]);
    expect(store.registrations.get('secure', MAC)?.incomingHost).toBeUndefined();
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    await registry.register('kvm-2', nic(), 21, 'incoming');
    const forward = await registry.setPlacement(VM, ['kvm-2'], 'launcher');
    expect(forward).toMatchObject({ revoked: [], moved: [{ hostId: 'kvm-2' }] });
    // Placed nowhere: revoked, as always.
    expect((await registry.setPlacement(VM, [], 'launcher')).revoked).toHaveLength(1);
  });

  it('a silent source expires into a hand-over; a destination that was not placed any more gets nothing', async () => {
    let clock = 1_000_000;
    const timed = parseSite({ backend: { registrations: { expireAfter: '10m', expireGrace: '1m' } } });
    registry = new Registry(timed, store, enforcer, { now: () => clock });
    await registry.start();
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    await registry.register('kvm-1', nic(), 10);
    await registry.register('kvm-2', nic(), 20, 'incoming');
    clock += 5 * 60_000;
    await registry.reconcile('kvm-2', [nic()], 25);
    clock += 6 * 60_000;
    expect(await registry.sweep()).toEqual({ hosts: ['kvm-1'], removed: 0 });
    expect(store.registrations.get('secure', MAC)).toMatchObject({ hostId: 'kvm-2' });
  });

  it('a quota the destination is at refuses the marked register, and records nothing', async () => {
    const small = parseSite({ backend: { registrations: { perHost: 1 } } });
    registry = new Registry(small, store, enforcer);
    await registry.start();
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
    await registry.setPlacement(OTHER, ['kvm-2'], 'launcher');
    await registry.register('kvm-1', nic(), 10);
    await registry.register('kvm-2', nic('secure', OTHER, '52:54:00:00:00:02'), 10);
    expect(await code(registry.register('kvm-2', nic(), 20, 'incoming'))).toBe('E_QUOTA_EXCEEDED');
    expect(store.registrations.get('secure', MAC)?.incomingHost).toBeUndefined();
  });
});

/**
 * One backend-side event of a migration of the VM between kvm-1 (A) and
 * kvm-2 (B). Generations are each host's clock: every event of one host
 * carries a larger one than its earlier events.
 */
type Step =
  | { kind: 'register'; host: string; generation: number; marked: boolean }
  | { kind: 'deregister'; host: string; generation: number }
  | { kind: 'reconcile'; host: string; generation: number; running: boolean }
  | { kind: 'place'; hosts: string[] };

/** The hook events of one host, in the order its spool delivers them (generation order). */
type HostStep =
  Exclude<Step, { kind: 'place' }> extends infer S ? (S extends unknown ? Omit<S, 'host'> : never) : never;
function hostEvents(host: string, events: readonly HostStep[]): Step[] {
  return events.map((e) => ({ ...e, host }) as Step);
}

/**
 * An interleaving of per-host sequences (each kept in its order), with each
 * step possibly delivered twice (a retry of a request whose answer was lost
 * arrives again later).
 */
const interleave = (lanes: Step[][]) =>
  fc
    .tuple(
      fc.array(fc.nat(lanes.length - 1), { minLength: 200, maxLength: 200 }),
      fc.array(fc.tuple(fc.nat(40), fc.nat(40)), { maxLength: 4 }),
    )
    .map(([picks, retries]) => {
      const queues = lanes.map((lane) => [...lane]);
      const order: Step[] = [];
      for (const pick of picks) {
        const lane = queues[pick] ?? [];
        const step = lane.shift();
        if (step) order.push(step);
      }
      for (const lane of queues) order.push(...lane);
      for (const [from, later] of retries) {
        const step = order[from % order.length];
        if (step && step.kind !== 'place')
          order.splice(Math.min(order.length, (from % order.length) + 1 + later), 0, step);
      }
      return order;
    });

async function apply(step: Step): Promise<void> {
  switch (step.kind) {
    case 'register':
      await registry
        .register(step.host, nic(), step.generation, step.marked ? 'incoming' : undefined)
        .catch(() => undefined);
      return;
    case 'deregister':
      await registry.deregister(step.host, key(), step.generation);
      return;
    case 'reconcile':
      await registry.reconcile(step.host, step.running ? [nic()] : [], step.generation);
      return;
    case 'place':
      await registry.setPlacement(VM, step.hosts, 'launcher');
  }
}

/** The VM registered on kvm-1 (placed on both for the migration), before the migration starts. */
async function registeredOnA(): Promise<number> {
  await fresh();
  await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'launcher');
  const first = await registry.register('kvm-1', nic(), 10);
  return first.registration?.nicId ?? -1;
}

/** Checks after every step: the NIC is never revoked, never gets another id. */
async function run(order: readonly Step[], nicId: number): Promise<void> {
  for (const step of order) {
    const from = enforcer.changes.length;
    await apply(step);
    for (const change of enforcer.changes.slice(from)) expect(revokedBy(change), JSON.stringify(step)).toEqual([]);
    expect(store.registrations.get('secure', MAC)?.nicId, JSON.stringify(step)).toBe(nicId);
  }
}

describe('property: every delivery order of a migration', () => {
  it('A -> B completes: B holds the NIC at the end, never revoked, same NIC id, no incoming record left', async () => {
    // B's first marked register reaches the backend before A's stop (B's migrate/start hooks run before the
    // memory copy and wait for the backend; with migration.requireBackend a migration without it is refused).
    const b = hostEvents('kvm-2', [
      { kind: 'register', generation: 21, marked: true }, // start
      { kind: 'reconcile', generation: 22, running: true }, // B's timer while paused or running
      { kind: 'register', generation: 23, marked: true }, // started
    ]);
    const a = hostEvents('kvm-1', [
      { kind: 'reconcile', generation: 15, running: true }, // A's timer before the move (delivered late)
      { kind: 'deregister', generation: 30 }, // stopped (1-2 s after B resumed)
      { kind: 'deregister', generation: 31 }, // release
      { kind: 'reconcile', generation: 32, running: false },
    ]);
    const launcher: Step[] = [{ kind: 'place', hosts: ['kvm-2'] }];
    await fc.assert(
      fc.asyncProperty(interleave([b, a, launcher]), async (rest) => {
        const nicId = await registeredOnA();
        await run([{ kind: 'register', host: 'kvm-2', generation: 20, marked: true }, ...rest], nicId); // migrate
        const final = store.registrations.get('secure', MAC);
        expect(final?.hostId).toBe('kvm-2');
        expect(final?.incomingHost).toBeUndefined();
        expect(store.registrations.list()).toHaveLength(1);
      }),
      { numRuns: 150 },
    );
  });

  it('A -> B fails (B QEMU exits, A runs on): A holds the NIC at the end, never revoked, no incoming record left', async () => {
    const b = hostEvents('kvm-2', [
      { kind: 'register', generation: 20, marked: true }, // migrate
      { kind: 'register', generation: 21, marked: true }, // start
      { kind: 'deregister', generation: 24 }, // stopped
      { kind: 'deregister', generation: 25 }, // release
      { kind: 'reconcile', generation: 26, running: false },
    ]);
    const a = hostEvents('kvm-1', [
      { kind: 'reconcile', generation: 15, running: true },
      { kind: 'register', generation: 40, marked: false }, // reconnect (libvirtd restart)
      { kind: 'reconcile', generation: 41, running: true },
    ]);
    const launcher: Step[] = [{ kind: 'place', hosts: ['kvm-1'] }];
    await fc.assert(
      fc.asyncProperty(interleave([b, a, launcher]), fc.boolean(), async (order, launcherLast) => {
        const nicId = await registeredOnA();
        const steps = launcherLast ? [...order.filter((s) => s.kind !== 'place'), ...launcher] : order;
        await run(steps, nicId);
        const final = store.registrations.get('secure', MAC);
        expect(final?.hostId).toBe('kvm-1');
        expect(final?.incomingHost).toBeUndefined();
      }),
      { numRuns: 150 },
    );
  });

  it('A -> B -> A: the round trip ends on A, never revoked, same NIC id', async () => {
    const b = hostEvents('kvm-2', [
      { kind: 'register', generation: 21, marked: true }, // start
      { kind: 'register', generation: 23, marked: true }, // started
      { kind: 'register', generation: 50, marked: false }, // a reconnect while it runs on B
      { kind: 'deregister', generation: 70 }, // stopped, after A resumed
      { kind: 'deregister', generation: 71 }, // release
    ]);
    const a = hostEvents('kvm-1', [
      { kind: 'deregister', generation: 30 }, // stopped after the first move
      { kind: 'deregister', generation: 31 }, // release
      { kind: 'register', generation: 60, marked: true }, // migrate back
      { kind: 'register', generation: 61, marked: true }, // start
      { kind: 'register', generation: 62, marked: true }, // started
    ]);
    await fc.assert(
      fc.asyncProperty(fc.nat(3), fc.nat(3), async (splitB, retryAt) => {
        const nicId = await registeredOnA();
        // Physical order: B's hooks before A's stop; A's migrate back after B resumed; B's stop after A's start.
        const order: Step[] = [
          { kind: 'register', host: 'kvm-2', generation: 20, marked: true },
          ...b.slice(0, 1 + (splitB % 2)),
          ...a.slice(0, 2),
          ...b.slice(1 + (splitB % 2), 3),
          ...a.slice(2),
          ...b.slice(3),
        ];
        const retry = order[retryAt * 3];
        if (retry) order.push(retry);
        await run(order, nicId);
        expect(store.registrations.get('secure', MAC)).toMatchObject({ hostId: 'kvm-1' });
        expect(store.registrations.get('secure', MAC)?.incomingHost).toBeUndefined();
      }),
      { numRuns: 40 },
    );
  });
});
