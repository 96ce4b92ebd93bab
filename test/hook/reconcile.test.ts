import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookConfig } from '../../src/hook/setup/config-types.js';
import { transportOf } from '../../src/hook/agent/environment.js';
import { nextGeneration } from '../../src/hook/agent/generation.js';
import { hookLog } from '../../src/hook/agent/log.js';
import { reconcileHost } from '../../src/hook/agent/reconcile.js';
import { Spool } from '../../src/hook/agent/spool.js';
import { writeFileSync } from 'node:fs';
import { domainXml, listeningBackend, testVm } from './support.js';

let server: Awaited<ReturnType<typeof listeningBackend>>;
let dir: string;
let config: HookConfig;

beforeAll(async () => {
  server = await listeningBackend();
  dir = mkdtempSync(join(tmpdir(), 'tn-reconcile-'));
  writeFileSync(join(dir, 'token'), server.backend.tokens.host, { mode: 0o600 });
  config = {
    hostId: 'kvm-1',
    backend: { url: `http://127.0.0.1:${server.port}`, tokenFile: join(dir, 'token'), insecure: true },
    networks: [{ name: 'secure', requireRegistration: false }],
    timeouts: { requestMs: 2000, hookMs: 3000 },
    spoolDir: join(dir, 'spool'),
    syslog: false,
  };
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const register = async (vm: ReturnType<typeof testVm>, host: 'host' | 'other-host', generation: number) => {
  await server.backend.place(vm.uuid, [host === 'host' ? 'kvm-1' : 'kvm-2']);
  return server.backend.call('POST', '/v1/register', host, {
    vmUuid: vm.uuid,
    vmName: vm.name,
    mac: vm.nics[0]!.mac,
    network: 'secure',
    generation,
  });
};

describe('host reconcile', () => {
  it("converges the backend to the running domains' managed NICs, and supersedes older spooled events", async () => {
    const running = testVm('running');
    const gone = testVm('gone');
    const fresh = testVm('fresh');
    await server.backend.place(fresh.uuid, ['kvm-1']);
    const migrated = testVm('migrated-away');
    await register(running, 'host', 1);
    await register(gone, 'host', 1);
    await register(migrated, 'other-host', 1);
    const spool = new Spool(config.spoolDir);
    spool.append({
      op: 'deregister',
      generation: 2,
      cause: 'test',
      nic: { vmUuid: gone.uuid, vmName: 'gone', mac: gone.nics[0]!.mac!, network: 'unknown-net' },
    });
    let lists = 0;
    const log = hookLog({ syslog: false, stderr: () => {} });
    const report = await reconcileHost(
      config,
      { transport: await transportOf(config), spool, log, requestMs: 2000, deadline: Date.now() + 5000 },
      async () => {
        // A hook event while the first reconcile is under way: it must start over.
        if (lists++ === 0) nextGeneration(config.spoolDir);
        return [domainXml(running), domainXml(fresh), domainXml(testVm('unmanaged', 'default')), '<domain><broken'];
      },
    );
    expect(report.attempts).toBe(2);
    expect(report.nics.map((n) => n.vmName)).toEqual(['running', 'fresh']);
    expect(report.problems).toEqual([
      'Cannot parse domain XML: expected well-formed XML, found a malformed start tag <broken at line 1',
    ]);
    const held = server.backend.store.registrations
      .ofHost('kvm-1')
      .map((r) => r.vmName)
      .sort();
    expect(held).toEqual(['fresh', 'running']);
    expect(server.backend.store.registrations.ofHost('kvm-2').map((r) => r.vmName)).toEqual(['migrated-away']);
    // The spooled event for an unknown network was refused for good by the flush, not lost: set aside.
    expect(report.flush).toMatchObject({ deadLettered: 1, remaining: 0 });
    expect(spool.list()).toEqual([]);
  });
});
