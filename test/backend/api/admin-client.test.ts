/**
 * The launcher's path for a VM's allow-list: the exported AdminClient against
 * the real API (listening on loopback), then the host's registration, as the
 * hook sends it at `start`: the NIC is enforced with exactly what the admin
 * set. A host token cannot set an allow-list.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdminClient, BackendClient, BackendRequestError } from '../../../src/index.js';
import { parseSite } from '../../../src/site/parse.js';
import { backendFixture, type BackendFixture } from '../../support/backend-fixture.js';
import { cli } from '../../support/cli.js';
import { RecordingEnforcer } from '../../support/recording-enforcer.js';
import { BASE_NIC } from './refusals.js';

let enforcer: RecordingEnforcer;
let backend: BackendFixture;
let url = '';
const site = parseSite({ backend: { upstreamDns: ['198.51.100.53'] } });

beforeEach(async () => {
  enforcer = new RecordingEnforcer();
  backend = await backendFixture(enforcer, site);
  await backend.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(backend.app.server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await backend.app.close();
  backend.store.close();
});

describe('AdminClient: the launcher sets what a VM may reach before it starts', () => {
  it('sets, reads and lists allow-lists; the registration that follows (placed) enforces exactly them', async () => {
    const admin = new AdminClient({ url, token: backend.tokens.admin });
    const set = await admin.setAllowList(BASE_NIC.vmUuid, [
      { address: '203.0.113.10', protocol: 'tcp', ports: 443 },
      { domain: 'pypi.org', protocol: 'tcp', ports: '8000-8100' },
    ]);
    expect(set).toEqual({
      vmUuid: BASE_NIC.vmUuid,
      entries: [
        { address: '203.0.113.10', protocol: 'tcp', ports: 443 },
        { domain: 'pypi.org', protocol: 'tcp', ports: '8000-8100' },
      ],
    });
    expect(await admin.allowList(BASE_NIC.vmUuid)).toEqual(set);
    expect(await admin.allowLists()).toEqual({ allowLists: [set] });

    // The launcher places the VM on the host it starts it on; virsh start: the hook registers the NIC with the host's token.
    await admin.setPlacement(BASE_NIC.vmUuid, ['kvm-1']);
    const host = new BackendClient({ url, token: backend.tokens.host });
    await host.call('POST', '/v1/register', BASE_NIC);
    const enforced = enforcer.changes.at(-1)?.after.find((n) => n.registration.mac === BASE_NIC.mac);
    expect(enforced?.entries).toEqual([
      { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } },
      { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 8000, to: 8100 } },
    ]);
  });

  it('a host token cannot set an allow-list; an invalid entry is refused with the API message; nothing changes', async () => {
    const asHost = new AdminClient({ url, token: backend.tokens.host });
    const refused = await asHost
      .setAllowList(BASE_NIC.vmUuid, [{ address: '203.0.113.10', protocol: 'tcp' }])
      .catch((e) => e);
    expect(refused).toBeInstanceOf(BackendRequestError);
    expect(refused).toMatchObject({ code: 'E_BACKEND_REFUSED', status: 403 });
    const admin = new AdminClient({ url, token: backend.tokens.admin });
    const invalid = await admin
      .setAllowList(BASE_NIC.vmUuid, [{ address: '203.0.113.10', protocol: 'gre' }])
      .catch((e) => e);
    expect(invalid).toMatchObject({ code: 'E_BACKEND_REFUSED', status: 400 });
    expect((invalid as Error).message).toMatch(/^Backend refused PUT \/v1\/vms\/[0-9a-f-]+\/allow-list \(400\): /);
    expect(await admin.allowLists()).toEqual({ allowLists: [] });
  });

  it('SSH: the registration answers the port; the client and `ssh ls|sources` list, narrow and reset', async () => {
    const admin = new AdminClient({ url, token: backend.tokens.admin });
    await admin.setPlacement(BASE_NIC.vmUuid, ['kvm-1']);
    const host = new BackendClient({ url, token: backend.tokens.host });
    const registered = await host.call<{ ip: string; ssh?: { port: number } }>('POST', '/v1/register', BASE_NIC);
    expect(registered.ssh).toEqual({ port: 22000 });
    const forwards = await admin.sshForwards();
    expect(forwards.forwards).toMatchObject([{ vmUuid: BASE_NIC.vmUuid, port: 22000, ip: registered.ip }]);
    expect(await admin.vmSsh(BASE_NIC.vmUuid)).toEqual({ vmUuid: BASE_NIC.vmUuid, sources: null, ...forwards });

    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-ssh-cli-'));
    try {
      const tokenFile = join(dir, 'admin.token');
      await writeFile(tokenFile, `${backend.tokens.admin}\n`);
      const conn = ['--backend', url, '--token-file', tokenFile];
      const ls = await cli('ssh', 'ls', ...conn);
      expect(ls).toMatchObject({ code: 0, stderr: '' });
      expect(ls.stdout).toBe(`${BASE_NIC.vmUuid}\tvm-1\tsecure\t*:22000 -> ${registered.ip}:22\t0.0.0.0/0\n`);
      const set = await cli('ssh', 'sources', 'set', BASE_NIC.vmUuid, '203.0.113.7', '198.51.100.0/24', ...conn);
      expect(set.code).toBe(0);
      expect(set.stdout).toContain(`${BASE_NIC.vmUuid}: SSH from 203.0.113.7/32, 198.51.100.0/24\n`);
      expect(set.stdout).toContain('narrowed to 203.0.113.7/32,198.51.100.0/24\n');
      expect((await cli('--json', 'ssh', 'ls', '--vm', BASE_NIC.vmUuid, ...conn)).stdout).toContain('"narrowed": true');
      const bad = await cli('ssh', 'sources', 'set', BASE_NIC.vmUuid, '203.0.113.7/24', ...conn);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^Backend refused PUT \/v1\/vms\/[0-9a-f-]+\/ssh\/sources \(400\): /);
      const reset = await cli('ssh', 'sources', 'reset', BASE_NIC.vmUuid, ...conn);
      expect(reset.stdout).toContain(': SSH from the site sources\n');
      const none = await cli('ssh', 'sources', 'set', BASE_NIC.vmUuid, ...conn);
      expect(none.stdout).toContain(': SSH from nobody\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an unreachable backend is E_BACKEND_UNREACHABLE', async () => {
    const admin = new AdminClient({ url: 'http://127.0.0.1:9', token: 'x.y', timeoutMs: 500 });
    await expect(admin.allowLists()).rejects.toMatchObject({ code: 'E_BACKEND_UNREACHABLE' });
  });
});
