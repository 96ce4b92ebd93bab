import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SshAccessError } from '../../../src/errors/ssh-access-error.js';
import { openStore, type Store } from '../../../src/backend/store/store.js';
import type { Network, SshAccess } from '../../../src/site/model.js';
import { parseSite } from '../../../src/site/parse.js';

const HOUR = 3_600_000;
const site = parseSite({
  networks: {
    secure: { preset: 'secure', ssh: { ports: '2200-2203', quarantine: '1h' } },
    other: { preset: 'service', ssh: { ports: '3300-3301' } },
  },
});
const secure = site.networks[0] as Network & { ssh: SshAccess };
const other = site.networks[1] as Network & { ssh: SshAccess };
const nic = (i: number) => ({ mac: `52:54:00:00:02:${i.toString(16).padStart(2, '0')}`, vmUuid: `vm-${i}` });
const free = (_port: number) => false;

/** Allocate inside a transaction, as the registry does: a refusal leaves the store as it was. */
function allocate(store: Store, network: Network & { ssh: SshAccess }, i: number, now: number, inUse = free) {
  return store.transaction(() => store.sshPorts.allocate(network, nic(i), now, inUse));
}

function refusal(run: () => unknown): SshAccessError {
  try {
    run();
  } catch (error) {
    if (error instanceof SshAccessError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('SSH port allocation', () => {
  it('gives a NIC one port of its range, the same while it holds it, and lists it', () => {
    const store = openStore(':memory:');
    const port = allocate(store, secure, 1, 0);
    expect(port).toBeGreaterThanOrEqual(2200);
    expect(port).toBeLessThanOrEqual(2203);
    expect(allocate(store, secure, 1, 5)).toBe(port);
    expect(store.sshPorts.held('secure', nic(1).mac)).toBe(port);
    expect(store.sshPorts.list()).toEqual([{ network: 'secure', port, mac: nic(1).mac, vmUuid: 'vm-1' }]);
    expect(store.sshPorts.ofVm('vm-1').map((p) => p.port)).toEqual([port]);
  });

  it('keeps ports across a reopen of the store (a service restart)', () => {
    const path = `/tmp/ticrypt-ssh-ports-${process.pid}-${Date.now()}.db`;
    const first = openStore(path);
    const ports = [1, 2, 3].map((i) => allocate(first, secure, i, 0));
    first.close();
    const again = openStore(path);
    expect([1, 2, 3].map((i) => again.sshPorts.held('secure', nic(i).mac))).toEqual(ports);
    expect([1, 2, 3].map((i) => allocate(again, secure, i, 10))).toEqual(ports);
    again.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  });

  it('hands out never-used ports before released ones, and a released one to another NIC only after the quarantine', () => {
    const store = openStore(':memory:');
    const ports = [1, 2, 3, 4].map((i) => allocate(store, secure, i, 0));
    expect(new Set(ports).size).toBe(4);
    store.sshPorts.release('secure', nic(2).mac, 1000);
    expect(store.sshPorts.held('secure', nic(2).mac)).toBeUndefined();
    const refused = refusal(() => allocate(store, secure, 5, 1000 + HOUR - 1));
    expect(refused.code).toBe('E_SSH_PORTS_EXHAUSTED');
    expect(refused.message).toBe(
      `No SSH port for ${nic(5).mac} on network secure: all 4 of ports 2200-2203 are held by registered NICs (3) or in quarantine (1), the first free again at ${new Date(1000 + HOUR).toISOString()}`,
    );
    expect(allocate(store, secure, 5, 1000 + HOUR)).toBe(ports[1]);
  });

  it('gives a VM its own released port back at once, but not another VM that took the MAC', () => {
    const store = openStore(':memory:');
    const port = allocate(store, secure, 1, 0);
    allocate(store, secure, 2, 0);
    store.sshPorts.release('secure', nic(1).mac, 10);
    expect(allocate(store, secure, 1, 20)).toBe(port);
    store.sshPorts.release('secure', nic(1).mac, 30);
    const taken = store.transaction(() =>
      store.sshPorts.allocate(secure, { mac: nic(1).mac, vmUuid: 'another-vm' }, 40, free),
    );
    expect(taken).not.toBe(port);
  });

  it('skips ports with listening sockets; when only those are left: E_SSH_PORT_IN_USE, nothing stored', () => {
    const store = openStore(':memory:');
    const listening = (port: number) => port === 2200 || port === 2201;
    expect(allocate(store, secure, 1, 0, listening)).toBe(2202);
    expect(allocate(store, secure, 2, 0, listening)).toBe(2203);
    const refused = refusal(() => allocate(store, secure, 3, 0, listening));
    expect(refused.code).toBe('E_SSH_PORT_IN_USE');
    expect(refused.message).toBe(
      `No SSH port for ${nic(3).mac} on network secure: the free ones of ports 2200-2203 (2) have listening sockets of other programs on the backend (networks.secure.ssh.ports: choose a range nothing else listens on)`,
    );
    expect(store.sshPorts.list().map((p) => p.port)).toEqual([2202, 2203]);
  });

  it('keeps networks apart: each allocates from its own range, one port one NIC', () => {
    const store = openStore(':memory:');
    expect(allocate(store, other, 1, 0)).toBe(3300);
    expect(allocate(store, other, 2, 0)).toBe(3301);
    expect(refusal(() => allocate(store, other, 3, 0)).code).toBe('E_SSH_PORTS_EXHAUSTED');
    expect(allocate(store, secure, 3, 0)).toBe(2200);
  });

  it('moves a NIC whose port lies outside a changed range into the new one', () => {
    const store = openStore(':memory:');
    expect(allocate(store, other, 1, 0)).toBe(3300);
    const moved = { ...other, ssh: { ...other.ssh, ports: { from: 4400, to: 4401 } } };
    expect(allocate(store, moved, 1, 10)).toBe(4400);
    expect(store.sshPorts.list()).toEqual([{ network: 'other', port: 4400, mac: nic(1).mac, vmUuid: 'vm-1' }]);
  });

  it('walks the range with a cursor: 2,000 NICs of a 2,000-port range each get their own port', () => {
    const store = openStore(':memory:');
    const wide = { ...secure, ssh: { ...secure.ssh, ports: { from: 30000, to: 31999 } } };
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      seen.add(store.transaction(() => store.sshPorts.allocate(wide, { mac: `m${i}`, vmUuid: `v${i}` }, 0, free)));
    }
    expect(seen.size).toBe(2000);
    expect(refusal(() => allocate(store, wide, 1, 0)).code).toBe('E_SSH_PORTS_EXHAUSTED');
  });
});

describe('SSH sources', () => {
  it('stores a VM narrowing, and removes it to give the VM the site sources again', () => {
    const store = openStore(':memory:');
    expect(store.sshSources.get('vm-1')).toBeUndefined();
    store.sshSources.set('vm-1', ['203.0.113.0/24']);
    store.sshSources.set('vm-2', []);
    expect(store.sshSources.get('vm-1')).toEqual(['203.0.113.0/24']);
    expect([...store.sshSources.list()]).toEqual([
      ['vm-1', ['203.0.113.0/24']],
      ['vm-2', []],
    ]);
    store.sshSources.set('vm-1', undefined);
    expect(store.sshSources.get('vm-1')).toBeUndefined();
  });
});
