/**
 * The installed qemu hook in a live migration between two hosts (two rigs,
 * each with its own host id and token, one real API): the destination's
 * `migrate begin` notes the VM and registers with the marker, `start` and
 * `started` send it too, the source's late `stopped` is answered `moved`, a
 * failed migration's `stopped` on the destination `withdrawn`; with the
 * backend down, `migration.requireBackend` refuses the migration at `migrate`.
 * No run writes a byte on stdout (at `migrate`, it would replace the XML).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import {
  domainXml,
  hostRig,
  type HostRig,
  portHookData,
  removeRig,
  runHookScript,
  sharedBackend,
  testVm,
  type TestVm,
} from './support.js';

const shared = sharedBackend();
let a: HostRig;
let b: HostRig;

beforeEach(() => {
  shared.proxy.mode = 'up';
  a = hostRig({
    hostId: 'kvm-1',
    token: shared.server.backend.tokens.host,
    backendUrl: `http://127.0.0.1:${shared.server.port}`,
  });
  // The destination reaches the backend through the proxy a test can take down.
  b = hostRig({
    hostId: 'kvm-2',
    token: shared.server.backend.tokens.otherHost,
    backendUrl: `http://127.0.0.1:${shared.proxy.port}`,
  });
});
afterEach(() => {
  removeRig(a);
  removeRig(b);
});

const hook = (r: HostRig, vm: TestVm, op: string, subop: string, form: 'live' | 'configured') =>
  runHookScript(r.qemuHook, [vm.name, op, subop, '-'], domainXml(vm, form));
const registration = (vm: TestVm) => shared.server.backend.store.registrations.get('secure', vm.nics[0]!.mac!);
const noted = (r: HostRig) => {
  try {
    return readdirSync(join(r.spoolDir, 'incoming'));
  } catch {
    return [];
  }
};
const spooledFiles = (r: HostRig) => {
  try {
    return readdirSync(join(r.spoolDir, 'events')).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
};

/** The VM running on kvm-1, registered, and placed on both hosts by the launcher for the migration. */
async function runningOnA(name: string): Promise<TestVm> {
  const vm = testVm(name);
  await shared.server.backend.place(vm.uuid, ['kvm-1']);
  expect(await hook(a, vm, 'start', 'begin', 'live')).toMatchObject({ code: 0, stdout: '' });
  await shared.server.backend.place(vm.uuid, ['kvm-1', 'kvm-2']);
  return vm;
}

describe('the qemu hook in a live migration', () => {
  it('A -> B in libvirt order: B incoming from migrate on, A stopped answered moved, B then holds the NIC', async () => {
    const vm = await runningOnA('vm-mig-ok');
    const before = registration(vm);
    const migrate = await hook(b, vm, 'migrate', 'begin', 'configured');
    expect(migrate).toMatchObject({ code: 0, stdout: '' });
    expect(migrate.stderr).toMatch(/qemu migrate: register .* generation \d+: incoming ip=/);
    expect(noted(b)).toEqual([vm.uuid]);
    expect(await hook(b, vm, 'prepare', 'begin', 'configured')).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // The network hook's port-created on the destination carries the marker too: no takeover.
    const port = await runHookScript(b.networkHook, ['secure', 'port-created', 'begin', '-'], portHookData(vm));
    expect(port).toMatchObject({ code: 0, stdout: '' });
    expect(port.stderr).toMatch(/network port-created: register .*: incoming/);
    for (const op of ['start', 'started']) {
      const run = await hook(b, vm, op, 'begin', 'live');
      expect(run).toMatchObject({ code: 0, stdout: '' });
      expect(run.stderr).toMatch(new RegExp(`qemu ${op}: register .*: incoming ip=${before?.ip}`));
    }
    expect(registration(vm)).toMatchObject({ hostId: 'kvm-1', incomingHost: 'kvm-2', nicId: before?.nicId });
    // The guest resumed on B (no hook); A's stopped and release follow.
    const stopped = await hook(a, vm, 'stopped', 'end', 'configured');
    expect(stopped).toMatchObject({ code: 0, stdout: '' });
    expect(stopped.stderr).toMatch(/qemu stopped: deregister .*: moved \(live migration/);
    await hook(a, vm, 'release', 'end', 'configured');
    expect(registration(vm)).toMatchObject({ hostId: 'kvm-2', nicId: before?.nicId, ip: before?.ip });
    // Later on B: a libvirtd restart, then the VM's normal stop there removes it, and the note goes.
    expect((await hook(b, vm, 'reconnect', 'begin', 'live')).stderr).toMatch(/: unchanged/);
    const stop = await hook(b, vm, 'stopped', 'end', 'configured');
    expect(stop.stderr).toMatch(/: removed/);
    expect(registration(vm)).toBeUndefined();
    expect(noted(b)).toEqual([]);
  });

  it('a failed migration (B runs migrate, prepare, stopped, release): withdrawn, A keeps it, no note left on B', async () => {
    const vm = await runningOnA('vm-mig-fail');
    const before = registration(vm);
    await hook(b, vm, 'migrate', 'begin', 'configured');
    await hook(b, vm, 'prepare', 'begin', 'configured');
    const stopped = await hook(b, vm, 'stopped', 'end', 'configured');
    expect(stopped).toMatchObject({ code: 0, stdout: '' });
    expect(stopped.stderr).toMatch(/: withdrawn \(the live migration to this host did not complete/);
    await hook(b, vm, 'release', 'end', 'configured');
    expect(registration(vm)).toEqual(before);
    expect(noted(b)).toEqual([]);
    // A later plain start on B is no migration: no marker, a takeover as before.
    const start = await hook(b, vm, 'start', 'begin', 'live');
    expect(start.stderr).toMatch(/: registered/);
  });

  it('the backend unreachable at migrate: refused with migration.requireBackend, spooled (marker kept) without', async () => {
    const vm = await runningOnA('vm-mig-down');
    shared.proxy.mode = 'refuse';
    b.writeConfig({ migration: { requireBackend: true } });
    const refused = await hook(b, vm, 'migrate', 'begin', 'configured');
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(/did not confirm the incoming migration \(migration.requireBackend\): refusing it/);
    expect(noted(b)).toEqual([]);
    expect(spooledFiles(b)).toEqual([]);
    b.writeConfig({ migration: { requireBackend: false } });
    const spooled = await hook(b, vm, 'migrate', 'begin', 'configured');
    expect(spooled).toMatchObject({ code: 0, stdout: '' });
    expect(spooled.stderr).toMatch(/spooled for later delivery/);
    const [file] = spooledFiles(b);
    expect(JSON.parse(readFileSync(join(b.spoolDir, 'events', file!), 'utf8'))).toMatchObject({
      op: 'register',
      migration: 'incoming',
    });
    expect(registration(vm)?.incomingHost).toBeUndefined();
    shared.proxy.mode = 'up';
    expect((await cli('host', 'flush', '--config', b.config)).code).toBe(0);
    expect(registration(vm)).toMatchObject({ hostId: 'kvm-1', incomingHost: 'kvm-2' });
  });

  it('a placement without B refuses the marked register; with requireBackend the migration is refused', async () => {
    const vm = await runningOnA('vm-mig-unplaced');
    await shared.server.backend.place(vm.uuid, ['kvm-1']);
    b.writeConfig({ migration: { requireBackend: true } });
    const run = await hook(b, vm, 'migrate', 'begin', 'configured');
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toMatch(/E_NOT_PLACED/);
    expect(registration(vm)?.incomingHost).toBeUndefined();
  });
});
