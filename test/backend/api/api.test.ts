import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../../src/site/parse.js';
import { backendFixture, type BackendFixture } from '../../support/backend-fixture.js';
import { RecordingEnforcer } from '../../support/recording-enforcer.js';
import { BASE_NIC, PLACEMENTS, REFUSALS } from './refusals.js';

let enforcer: RecordingEnforcer;
let backend: BackendFixture;
const site = parseSite({ backend: { upstreamDns: ['198.51.100.53'] } });

const VM3 = '0b1d2c3e-0000-4000-8000-000000000003';
const VM4 = '0b1d2c3e-0000-4000-8000-000000000004';

beforeEach(async () => {
  enforcer = new RecordingEnforcer();
  backend = await backendFixture(enforcer, site);
  // The VM launcher's placements: BASE_NIC's VM and VM 4 on kvm-1 ("host"), VM 3 (and another) on kvm-2.
  for (const [vm, hosts] of PLACEMENTS) await backend.place(vm, hosts);
  await backend.place(VM3, ['kvm-2']);
  await backend.place(VM4, ['kvm-1']);
});
afterEach(async () => {
  await backend.app.close();
  backend.store.close();
});

describe('SSH access', () => {
  it('answers the forward in the registration, lists it per VM, per host and all', async () => {
    const { json } = await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    expect(json.ssh).toEqual({ port: 22000 });
    const forward = {
      vmUuid: BASE_NIC.vmUuid,
      vmName: 'vm-1',
      network: 'secure',
      mac: BASE_NIC.mac,
      ip: json.ip,
      port: 22000,
      sources: ['0.0.0.0/0'],
      narrowed: false,
    };
    expect((await backend.call('GET', '/v1/ssh', 'admin')).json).toEqual({ forwards: [forward] });
    expect((await backend.call('GET', '/v1/ssh', 'host')).json).toEqual({ forwards: [forward] });
    expect((await backend.call('GET', '/v1/ssh', 'other-host')).json).toEqual({ forwards: [] });
    expect((await backend.call('GET', `/v1/vms/${BASE_NIC.vmUuid}/ssh`, 'admin')).json).toEqual({
      vmUuid: BASE_NIC.vmUuid,
      sources: null,
      forwards: [forward],
    });
  });

  it('narrows and resets a VM sources; an address means its /32', async () => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    const url = `/v1/vms/${BASE_NIC.vmUuid}/ssh/sources`;
    const set = await backend.call('PUT', url, 'admin', { sources: ['203.0.113.7', '198.51.100.0/24'] });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ sources: ['203.0.113.7/32', '198.51.100.0/24'] });
    expect(set.json.forwards[0]).toMatchObject({ sources: ['203.0.113.7/32', '198.51.100.0/24'], narrowed: true });
    expect(enforcer.changes.at(-1)?.after[0]?.ssh?.narrowed).toBe(true);
    const reset = await backend.call('DELETE', url, 'admin');
    expect(reset.json).toMatchObject({ sources: null, forwards: [{ narrowed: false, sources: ['0.0.0.0/0'] }] });
  });

  it('refuses sources outside the site with 422 E_SSH_SOURCES_OUTSIDE, and ports exhausted with 503', async () => {
    const narrow = parseSite({
      networks: { secure: { preset: 'secure', ssh: { ports: '2200-2200', sources: ['198.51.100.0/24'] } } },
    });
    const other = await backendFixture(new RecordingEnforcer(), narrow);
    try {
      for (const [vm, hosts] of PLACEMENTS) await other.place(vm, hosts);
      await other.place(VM4, ['kvm-1']);
      const refused = await other.call('PUT', `/v1/vms/${BASE_NIC.vmUuid}/ssh/sources`, 'admin', {
        sources: ['203.0.113.0/24'],
      });
      expect(refused.status).toBe(422);
      expect(refused.json.error).toMatchObject({ code: 'E_SSH_SOURCES_OUTSIDE' });
      expect((await other.call('POST', '/v1/register', 'host', BASE_NIC)).json.ssh).toEqual({ port: 2200 });
      const full = await other.call('POST', '/v1/register', 'host', {
        ...BASE_NIC,
        vmUuid: VM4,
        mac: '52:54:00:00:00:04',
      });
      expect(full.status).toBe(503);
      expect(full.json.error).toMatchObject({ code: 'E_SSH_PORTS_EXHAUSTED' });
    } finally {
      await other.app.close();
      other.store.close();
    }
  });
});

describe('registration', () => {
  it('registers a NIC, answers its reserved IP, and is idempotent', async () => {
    const first = await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ status: 'registered', network: 'secure', mac: BASE_NIC.mac });
    expect(first.json.ip).toMatch(/^192\.168\.(12[89]|1[3-9][0-9]|2[0-5][0-9])\.\d+$/);
    const again = await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    expect(again.json).toEqual({ ...first.json, status: 'unchanged' });
    expect(enforcer.changes).toHaveLength(1);
    expect(enforcer.changes[0]?.after.map((n) => n.registration.ip)).toEqual([first.json.ip]);
  });

  it('gives the same MAC the same IP after deregistration', async () => {
    const { json } = await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    await backend.call('POST', '/v1/deregister', 'host', { mac: BASE_NIC.mac, network: 'secure', generation: 2 });
    const again = await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, generation: 3 });
    expect(again.json.ip).toBe(json.ip);
  });

  it('deregisters only for the holding host and a generation not older (migration order)', async () => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    // The launcher migrates the VM: both hosts while it moves.
    await backend.place(BASE_NIC.vmUuid, ['kvm-1', 'kvm-2']);
    // The destination (kvm-2) starts the same VM: it takes the registration over.
    const moved = await backend.call('POST', '/v1/register', 'other-host', { ...BASE_NIC, generation: 1 });
    expect(moved.json.status).toBe('registered');
    // The source's stop arrives afterwards and must not remove it.
    const stop = await backend.call('POST', '/v1/deregister', 'host', {
      mac: BASE_NIC.mac,
      network: 'secure',
      generation: 5,
    });
    expect(stop.json).toEqual({ status: 'kept-other-host' });
    expect(backend.store.registrations.get('secure', BASE_NIC.mac)?.hostId).toBe('kvm-2');
    // After the migration the launcher leaves only the destination: its registration stays.
    await backend.place(BASE_NIC.vmUuid, ['kvm-2']);
    expect(backend.store.registrations.get('secure', BASE_NIC.mac)?.hostId).toBe('kvm-2');
    // A late stop from kvm-2 older than its registration is ignored too.
    await backend.call('POST', '/v1/register', 'other-host', { ...BASE_NIC, generation: 7 });
    const late = await backend.call('POST', '/v1/deregister', 'other-host', {
      mac: BASE_NIC.mac,
      network: 'secure',
      generation: 6,
    });
    expect(late.json).toEqual({ status: 'kept-newer' });
    const real = await backend.call('POST', '/v1/deregister', 'other-host', {
      mac: BASE_NIC.mac,
      network: 'secure',
      generation: 8,
    });
    expect(real.json).toEqual({ status: 'removed' });
    expect(backend.store.registrations.list()).toEqual([]);
  });

  it("ignores a register older than the same host's deregistration (a late or spooled event)", async () => {
    await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, generation: 3 });
    await backend.call('POST', '/v1/deregister', 'host', { mac: BASE_NIC.mac, network: 'secure', generation: 5 });
    const late = await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, generation: 4 });
    expect(late.json).toEqual({ status: 'stale', network: 'secure', mac: BASE_NIC.mac });
    expect(backend.store.registrations.list()).toEqual([]);
    // A deregistration of a NIC the host does not hold leaves nothing behind: no tombstone a flood could pile up.
    const tombstones = backend.store.deregistrations.size();
    const absent = await backend.call('POST', '/v1/deregister', 'host', {
      mac: '52:54:00:00:00:09',
      network: 'secure',
      generation: 9,
    });
    expect(absent.json).toEqual({ status: 'absent' });
    expect(backend.store.deregistrations.size()).toBe(tombstones);
    // A newer start registers again.
    const again = await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, generation: 6 });
    expect(again.json.status).toBe('registered');
    // The same rule holds in a reconcile whose snapshot is older than a deregistration.
    await backend.call('POST', '/v1/deregister', 'host', { mac: BASE_NIC.mac, network: 'secure', generation: 12 });
    const reconciled = await backend.call('POST', '/v1/reconcile', 'host', {
      generation: 11,
      nics: [{ vmUuid: BASE_NIC.vmUuid, vmName: 'vm-1', mac: BASE_NIC.mac, network: 'secure' }],
    });
    expect(reconciled.json.added).toEqual([]);
    expect(backend.store.registrations.list()).toEqual([]);
  });

  it('ignores a stale register from the same host', async () => {
    await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, generation: 5 });
    const stale = await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, vmName: 'renamed', generation: 4 });
    expect(stale.json.status).toBe('stale');
    expect(backend.store.registrations.get('secure', BASE_NIC.mac)?.vmName).toBe('vm-1');
  });

  it('reconciles a host to exactly the NICs it runs, in one change', async () => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, mac: '52:54:00:00:00:02', generation: 2 });
    await backend.call('POST', '/v1/register', 'other-host', {
      ...BASE_NIC,
      vmUuid: VM3,
      mac: '52:54:00:00:00:03',
      generation: 1,
    });
    const changesBefore = enforcer.changes.length;
    const { status, json } = await backend.call('POST', '/v1/reconcile', 'host', {
      generation: 10,
      nics: [
        { vmUuid: BASE_NIC.vmUuid, vmName: 'vm-1', mac: '52:54:00:00:00:02', network: 'secure' },
        {
          vmUuid: VM4,
          vmName: 'vm-4',
          mac: '52:54:00:00:00:04',
          network: 'service',
        },
      ],
    });
    expect(status).toBe(200);
    expect(json.added.map((r: { mac: string }) => r.mac)).toEqual(['52:54:00:00:00:04']);
    expect(json.removed.map((r: { mac: string }) => r.mac)).toEqual(['52:54:00:00:00:01']);
    expect(enforcer.changes.length).toBe(changesBefore + 1);
    expect(backend.store.registrations.list().map((r) => `${r.hostId}/${r.mac}`)).toEqual([
      'kvm-1/52:54:00:00:00:02',
      'kvm-2/52:54:00:00:00:03',
      'kvm-1/52:54:00:00:00:04',
    ]);
  });

  it('rolls the store back when enforcement fails', async () => {
    enforcer.failNext = true;
    const { status, json } = await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    expect(status).toBe(500);
    expect(json.error.code).toBe('E_INTERNAL');
    expect(backend.store.registrations.list()).toEqual([]);
    const retry = await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    expect(retry.json.status).toBe('registered');
  });

  it('lists a host its own registrations and an admin all', async () => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    await backend.call('POST', '/v1/register', 'other-host', {
      ...BASE_NIC,
      vmUuid: VM3,
      mac: '52:54:00:00:00:03',
    });
    expect((await backend.call('GET', '/v1/registrations', 'host')).json.registrations).toHaveLength(1);
    expect((await backend.call('GET', '/v1/registrations', 'admin')).json.registrations).toHaveLength(2);
    expect((await backend.call('GET', '/v1/registrations', 'none')).status).toBe(401);
  });
});

describe('allow-lists', () => {
  it('sets and gets entries, and enforces them on the VM NICs in one change', async () => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    const entries = [
      { address: '203.0.113.10', protocol: 'tcp', ports: 443 },
      { address: '203.0.113.0/24', protocol: 'udp', ports: '5000-5100' },
      { domain: 'pypi.org', protocol: 'tcp', ports: 443 },
      { address: '198.51.100.7', protocol: 'icmp' },
    ];
    const put = await backend.call('PUT', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin', { entries });
    expect(put.status).toBe(200);
    expect((await backend.call('GET', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin')).json.entries).toEqual(entries);
    const change = enforcer.changes.at(-1)!;
    expect(change.after[0]?.entries).toHaveLength(4);
    await backend.call('POST', '/v1/deregister', 'host', { mac: BASE_NIC.mac, network: 'secure', generation: 2 });
    expect(enforcer.changes.at(-1)?.after).toEqual([]);
  });

  it('refuses domain entries when no upstream resolver is configured', async () => {
    const bare = await backendFixture(new RecordingEnforcer());
    const { status, json } = await bare.call('PUT', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin', {
      entries: [{ domain: 'pypi.org', protocol: 'tcp' }],
    });
    expect(status).toBe(422);
    expect(json.error.message).toMatch(/upstreamDns/);
    await bare.app.close();
  });
});

describe('domain entries: wildcards and special-use ranges', () => {
  it('takes a wildcard and the ranges its answers may open, and gives them back', async () => {
    const entries = [
      { domain: '*.example.org', protocol: 'tcp', ports: 443 },
      { domain: 'intranet.example.org', protocol: 'tcp', specialRanges: ['10.9.0.0/16', '192.168.5.5'] },
    ];
    const put = await backend.call('PUT', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin', { entries });
    expect(put.status).toBe(200);
    expect((await backend.call('GET', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin')).json.entries).toEqual(entries);
  });

  it.each([
    [
      { domain: '*.org', protocol: 'tcp' },
      'body.entries[0].domain',
      /wildcard such as \*\.example\.org, found "\*\.org"/,
    ],
    [{ domain: 'a.*.example.org', protocol: 'tcp' }, 'body.entries[0].domain', /found "a\.\*\.example\.org"/],
    [{ domain: '**.example.org', protocol: 'tcp' }, 'body.entries[0].domain', /found/],
    [
      { domain: 'pypi.org', protocol: 'tcp', specialRanges: ['10.9.0.1/16'] },
      'body.entries[0].specialRanges[0]',
      /expected an IPv4 address or network/,
    ],
    [
      { address: '10.9.9.9', protocol: 'tcp', specialRanges: ['10.9.0.0/16'] },
      'body.entries[0].specialRanges',
      /only on a domain entry/,
    ],
    [
      { domain: 'pypi.org', protocol: 'tcp', specialRanges: Array(17).fill('10.0.0.0/8') },
      'body.entries[0].specialRanges',
      /at most 16/,
    ],
  ])('refuses %j', async (entry, path, message) => {
    const { status, json } = await backend.call('PUT', `/v1/vms/${BASE_NIC.vmUuid}/allow-list`, 'admin', {
      entries: [entry],
    });
    expect(status).toBe(400);
    const issue = json.error.issues.find((i: { path: string }) => i.path === path);
    expect(issue?.message, JSON.stringify(json.error.issues)).toMatch(message);
  });
});

describe('refusals change nothing', () => {
  it.each(REFUSALS.map((r) => [r.name, r] as const))('%s', async (_name, refusal) => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    const before = {
      registrations: backend.store.registrations.list(),
      allow: backend.store.allowLists.list(),
      changes: enforcer.changes.length,
    };
    const { status, json } = await backend.call(refusal.method, refusal.url, refusal.auth, refusal.body, refusal.raw);
    expect({ status, code: json?.error?.code }).toEqual({ status: refusal.status, code: refusal.code });
    expect(json.error.message).toMatch(/\S/);
    expect({
      registrations: backend.store.registrations.list(),
      allow: backend.store.allowLists.list(),
      changes: enforcer.changes.length,
    }).toEqual(before);
  });

  it('names the bad field, what was expected and what was found', async () => {
    const { json } = await backend.call('POST', '/v1/register', 'host', { ...BASE_NIC, mac: 'zz' });
    expect(json.error.issues).toEqual([
      { path: 'body.mac', message: 'expected a unicast MAC address like 52:54:00:12:34:56, found "zz"' },
    ]);
  });
});

describe('health and metrics', () => {
  it('answers health, and Prometheus metrics to a metrics or admin token', async () => {
    await backend.call('POST', '/v1/register', 'host', BASE_NIC);
    expect((await backend.call('GET', '/healthz', 'none')).json).toEqual({ ok: true });
    const metrics = await backend.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${backend.tokens.metrics}` },
    });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('ticrypt_registrations{network="secure"} 1');
    expect(metrics.body).toMatch(
      /ticrypt_api_request_seconds_count\{route="\/v1\/register",method="POST",status="200"\} 1/,
    );
  });
});
