import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import {
  domainXml,
  hostRig,
  type HostRig,
  removeRig,
  placeOn,
  runHookScript,
  sharedBackend,
  testVm,
  type TestVm,
} from './support.js';

/**
 * 100 random sequences of VM starts, stops, libvirtd restarts and backend
 * outages (refused connections, or a backend that accepts and never
 * answers), driven through the installed hook executable against the real
 * API. After each, with the backend back and the spool flushed, the backend's
 * registrations are exactly the running VMs' NICs: no event lost, none
 * applied out of order.
 */
const shared = sharedBackend();
let rig: HostRig;

beforeAll(async () => {
  rig = hostRig({
    hostId: 'kvm-1',
    token: shared.server.backend.tokens.host,
    backendUrl: `http://127.0.0.1:${shared.proxy.port}`,
  });
  rig.writeConfig({ timeouts: { requestMs: 250, hookMs: 700 } });
});
afterAll(() => removeRig(rig));

type Step =
  | { kind: 'backend'; mode: 'up' | 'refuse' | 'hang' }
  | { kind: 'start' | 'stop' | 'reconnect'; vms: number[] }
  | { kind: 'flush' };

const arbStep: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .constantFrom<'up' | 'refuse' | 'hang'>('up', 'refuse', 'refuse', 'hang')
      .map((mode) => ({ kind: 'backend' as const, mode })),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom<'start' | 'stop' | 'reconnect'>('start', 'start', 'stop', 'stop', 'reconnect'),
      vms: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
);

const seen = { runs: 0, spooled: 0, deliveredFromSpool: 0 };

async function qemu(vm: TestVm, op: string, form: 'live' | 'configured') {
  if (form === 'live') await placeOn(shared.server.backend, vm, 'kvm-1');
  const run = await runHookScript(
    rig.qemuHook,
    [vm.name, op, op === 'stopped' || op === 'release' ? 'end' : 'begin', '-'],
    domainXml(vm, form),
  );
  expect(run.stdout).toBe('');
  expect(run.code).toBe(0);
  seen.runs++;
  if (/spooled for later delivery/.test(run.stderr)) seen.spooled++;
  if (/delivered from the spool/.test(run.stderr)) seen.deliveredFromSpool++;
  return run;
}

describe('random sequences through the real hook and API', () => {
  it('no event is lost: after the backend is back and the spool flushed, registrations equal the running VMs', async () => {
    let sequence = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbStep, { minLength: 3, maxLength: 8 }), async (steps) => {
        sequence++;
        const vms = [0, 1, 2].map((i) => testVm(`seq${sequence}-vm${i}`, i === 2 ? 'service' : 'secure'));
        const running = new Set<number>();
        for (const step of steps) {
          if (step.kind === 'backend') shared.proxy.mode = step.mode;
          else if (step.kind === 'flush') await cli('host', 'flush', '--config', rig.config, '--timeout', '500');
          else {
            // libvirt runs one VM's hooks one after another, different VMs' concurrently.
            await Promise.all(
              step.vms.map(async (i) => {
                const vm = vms[i]!;
                if (step.kind === 'start' && !running.has(i)) {
                  running.add(i);
                  await qemu(vm, 'start', 'live');
                  await qemu(vm, 'started', 'live');
                } else if (step.kind === 'stop' && running.has(i)) {
                  running.delete(i);
                  await qemu(vm, 'stopped', 'configured');
                  await qemu(vm, 'release', 'configured');
                } else if (step.kind === 'reconnect' && running.has(i)) {
                  await qemu(vm, 'reconnect', 'live');
                }
              }),
            );
          }
        }
        shared.proxy.mode = 'up';
        // Half the time a hook run (libvirtd restarting: reconnect) comes first and delivers the spool.
        if (sequence % 2 === 0) await Promise.all([...running].map((i) => qemu(vms[i]!, 'reconnect', 'live')));
        const flush = await cli('host', 'flush', '--config', rig.config);
        expect(flush.code, flush.stderr).toBe(0);
        const registered = vms
          .map(
            (vm, i) =>
              [i, shared.server.backend.store.registrations.get(vm.nics[0]!.network!, vm.nics[0]!.mac!)] as const,
          )
          .filter(([, r]) => r !== undefined)
          .map(([i, r]) => {
            expect(r).toMatchObject({ hostId: 'kvm-1', vmUuid: vms[i]!.uuid });
            return i;
          });
        expect(registered, JSON.stringify(steps)).toEqual([...running].sort());
      }),
      { numRuns: 100, endOnFailure: true },
    );
    // The sequences did exercise the spool, and hook runs delivered it.
    expect(seen.spooled).toBeGreaterThan(10);
    expect(seen.deliveredFromSpool).toBeGreaterThan(3);
    console.log(
      `sequences: ${seen.runs} hook runs, ${seen.spooled} spooled an event, ${seen.deliveredFromSpool} delivered spooled ones`,
    );
  }, 600_000);
});
