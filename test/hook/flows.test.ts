/**
 * Port security inside the hook call, when Open vSwitch cannot help: absent
 * (no ovsdb-server socket) or hanging (a socket that accepts and never
 * answers), pointed at through `OVS_RUNDIR` as OVS's own tools are. The VM start is never failed or held past the bound,
 * and the hook says so in one stderr line; registration is unaffected.
 * Pinning with the real OVS: test/lab/portsec.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programsAvailable } from '../lab/prereq.js';
import {
  bundleHook,
  domainXml,
  hostRig,
  listeningBackend,
  placeOn,
  removeRig,
  runHookScript,
  testVm,
} from './support.js';

const ovs = programsAvailable('ovs-vsctl', 'ovs-ofctl');

describe.skipIf(!ovs)('the hook with a slow or absent Open vSwitch', () => {
  let server: Awaited<ReturnType<typeof listeningBackend>>;
  let dir = '';
  let hanging: Server;
  const held = new Set<Socket>();

  beforeAll(async () => {
    bundleHook();
    server = await listeningBackend();
    dir = mkdtempSync(join(tmpdir(), 'tn-ovs-'));
    for (const sub of ['empty', 'hang']) mkdirSync(join(dir, sub));
    // A "database" that takes connections and never answers.
    hanging = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      hanging.once('error', reject);
      hanging.listen(join(dir, 'hang', 'db.sock'), resolve);
    });
  });
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => hanging.close(resolve));
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['absent', 'empty', /flows: pin of 1 NIC\(s\) not done: cannot reach ovsdb-server at \S+\/empty\/db\.sock: ENOENT/],
    [
      'hanging',
      'hang',
      /flows: pin of 1 NIC\(s\) not done: ovsdb-server at \S+\/hang\/db\.sock gave no answer within \d+ ms/,
    ],
  ])(
    '%s: the VM starts, registered, within the bound; one stderr line says its port stays closed',
    async (_name, sub, line) => {
      const rig = hostRig({
        hostId: 'kvm-1',
        token: server.backend.tokens.host,
        backendUrl: `http://127.0.0.1:${server.port}`,
      });
      try {
        const vm = testVm(`vm-ovs-${sub}`);
        await placeOn(server.backend, vm, rig.hostId);
        const run = await runHookScript(rig.qemuHook, [vm.name, 'start', 'begin', '-'], domainXml(vm), {
          OVS_RUNDIR: join(dir, sub),
        });
        expect(run.code).toBe(0);
        expect(run.stdout).toBe('');
        expect(run.ms).toBeLessThan(2500);
        const errors = run.stderr.split('\n').filter((l) => l.includes('error'));
        expect(errors).toHaveLength(1);
        expect(errors[0]).toMatch(line);
        expect(errors[0]).toContain('their ports stay closed until host reconcile');
        expect(server.backend.store.registrations.get('secure', vm.nics[0]!.mac!)).toMatchObject({ vmUuid: vm.uuid });
      } finally {
        removeRig(rig);
      }
    },
  );
});
