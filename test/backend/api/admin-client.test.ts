/**
 * The launcher's path for a VM's allow-list: the exported AdminClient against
 * the real API (listening on loopback), then the host's registration, as the
 * hook sends it at `start`: the NIC is enforced with exactly what the admin
 * set. A host token cannot set an allow-list.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdminClient, BackendClient, BackendRequestError } from '../../../src/index.js';
import { parseSite } from '../../../src/site/parse.js';
import { backendFixture, type BackendFixture } from '../../support/backend-fixture.js';
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

  it('an unreachable backend is E_BACKEND_UNREACHABLE', async () => {
    const admin = new AdminClient({ url: 'http://127.0.0.1:9', token: 'x.y', timeoutMs: 500 });
    await expect(admin.allowLists()).rejects.toMatchObject({ code: 'E_BACKEND_UNREACHABLE' });
  });
});
