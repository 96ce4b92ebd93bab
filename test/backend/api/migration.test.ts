/**
 * Live migration through the API, two hosts with their own tokens: the
 * destination's marked registers (`migration: "incoming"`), the source's late
 * stop answered `moved`, a failed migration's stop answered `withdrawn`, the
 * wire shape of the marker and of the registration listing, and that the
 * marker widens no host's rights.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../../src/site/parse.js';
import { backendFixture, type BackendFixture } from '../../support/backend-fixture.js';
import { RecordingEnforcer } from '../../support/recording-enforcer.js';

let enforcer: RecordingEnforcer;
let backend: BackendFixture;
const site = parseSite({ backend: { upstreamDns: ['198.51.100.53'] } });
const VM = '0b1d2c3e-0000-4000-8000-000000000021';
const NIC = { vmUuid: VM, vmName: 'vm-moving', mac: '52:54:00:00:00:21', network: 'secure' };
const KEY = { mac: NIC.mac, network: NIC.network };

beforeEach(async () => {
  enforcer = new RecordingEnforcer();
  backend = await backendFixture(enforcer, site);
});
afterEach(async () => {
  await backend.app.close();
  backend.store.close();
});

const held = () => backend.store.registrations.get('secure', NIC.mac);
const revocations = () =>
  enforcer.changes.flatMap((change) =>
    change.before.filter((b) => !change.after.some((a) => a.registration.mac === b.registration.mac)),
  );

describe('live migration between two hosts, at the API', () => {
  it('A -> B: B is incoming until A stops, then holds the NIC; same address, never revoked', async () => {
    await backend.place(VM, ['kvm-1']);
    const first = await backend.call('POST', '/v1/register', 'host', { ...NIC, generation: 100 });
    expect(first.status).toBe(200);
    await backend.place(VM, ['kvm-1', 'kvm-2']);
    // The destination's migrate, start, started: incoming, with the NIC's address to pin by.
    for (const generation of [200, 201, 202]) {
      const marked = await backend.call('POST', '/v1/register', 'other-host', {
        ...NIC,
        generation,
        migration: 'incoming',
      });
      expect(marked).toMatchObject({ status: 200, json: { status: 'incoming', ip: first.json.ip } });
    }
    const listed = await backend.call('GET', '/v1/registrations', 'admin');
    expect(listed.json.registrations).toEqual([
      expect.objectContaining({ hostId: 'kvm-1', incomingHost: 'kvm-2', incomingGeneration: 202 }),
    ]);
    // The destination lists it (its port is pinned with it before the hand-over), as the source's still.
    expect((await backend.call('GET', '/v1/registrations', 'other-host')).json.registrations).toEqual([
      expect.objectContaining({ hostId: 'kvm-1', incomingHost: 'kvm-2', ip: first.json.ip }),
    ]);
    // So does its port-security view of groups (the peers route reads this).
    backend.store.groups.set(VM, 'lab');
    expect(backend.store.groups.peers('secure', 'kvm-2')).toEqual([
      expect.objectContaining({ members: [{ mac: NIC.mac, ip: first.json.ip }] }),
    ]);
    // The source's stopped and release, after the guest resumed on B.
    const stop = await backend.call('POST', '/v1/deregister', 'host', { ...KEY, generation: 150 });
    expect(stop.json).toEqual({ status: 'moved' });
    expect(held()).toMatchObject({ hostId: 'kvm-2', ip: first.json.ip, generation: 202 });
    expect((await backend.call('POST', '/v1/deregister', 'host', { ...KEY, generation: 151 })).json).toEqual({
      status: 'kept-other-host',
    });
    await backend.place(VM, ['kvm-2']);
    expect(held()?.hostId).toBe('kvm-2');
    expect(revocations()).toEqual([]);
    expect(backend.audits.filter((a) => a.event === 'deregister').map((a) => a['outcome'])).toEqual([
      'moved',
      'kept-other-host',
    ]);
  });

  it('a failed migration: B stops, answered withdrawn; A keeps the NIC untouched', async () => {
    await backend.place(VM, ['kvm-1', 'kvm-2']);
    await backend.call('POST', '/v1/register', 'host', { ...NIC, generation: 100 });
    const before = held();
    await backend.call('POST', '/v1/register', 'other-host', { ...NIC, generation: 200, migration: 'incoming' });
    const stop = await backend.call('POST', '/v1/deregister', 'other-host', { ...KEY, generation: 210 });
    expect(stop.json).toEqual({ status: 'withdrawn' });
    expect(held()).toEqual(before);
    expect(revocations()).toEqual([]);
  });

  it('the marker widens nothing: an unplaced host is refused, a bad marker is invalid, nothing changes', async () => {
    await backend.place(VM, ['kvm-1']);
    await backend.call('POST', '/v1/register', 'host', { ...NIC, generation: 100 });
    const before = held();
    const unplaced = await backend.call('POST', '/v1/register', 'other-host', {
      ...NIC,
      generation: 200,
      migration: 'incoming',
    });
    expect(unplaced).toMatchObject({ status: 403, json: { error: { code: 'E_NOT_PLACED' } } });
    const bad = await backend.call('POST', '/v1/register', 'host', { ...NIC, generation: 300, migration: 'outgoing' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.issues).toEqual([expect.objectContaining({ path: 'body.migration' })]);
    // A host cannot withdraw or hand over what it is neither holder nor incoming host of.
    expect((await backend.call('POST', '/v1/deregister', 'other-host', { ...KEY, generation: 400 })).json).toEqual({
      status: 'kept-other-host',
    });
    expect(held()).toEqual(before);
  });
});
