import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../../src/backend/store/store.js';
import { parseSite } from '../../../src/site/parse.js';
import { ipv4ToInt } from '../../../src/site/address.js';

const tiny = parseSite({
  networks: {
    lab: {
      kind: 'lab',
      egress: 'open',
      dns: 'open',
      bridge: 'br-lab',
      vlan: 1090,
      subnet: '10.90.0.0/24',
      gateway: '10.90.0.1',
      dhcp: { start: '10.90.0.10', end: '10.90.0.13' },
      reservations: [{ mac: '52:54:00:00:00:aa', ip: '10.90.0.12' }],
    },
  },
}).networks[0]!;

const mac = (i: number) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`;
const register = (store: ReturnType<typeof openStore>, i: number, ip: string) =>
  store.registrations.put({
    hostId: 'h',
    vmUuid: `vm-${i}`,
    vmName: 'vm',
    mac: mac(i),
    network: 'lab',
    ip,
    generation: 1,
    nicId: i + 1,
  });

describe('address allocation', () => {
  it('gives a MAC an address inside the range, the same one every time', () => {
    const store = openStore(':memory:');
    const ip = store.addresses.allocate(tiny, mac(1));
    expect(ipv4ToInt(ip)).toBeGreaterThanOrEqual(ipv4ToInt('10.90.0.10'));
    expect(ipv4ToInt(ip)).toBeLessThanOrEqual(ipv4ToInt('10.90.0.13'));
    expect(store.addresses.allocate(tiny, mac(1))).toBe(ip);
  });

  it('gives reservations their address and nobody else', () => {
    const store = openStore(':memory:');
    expect(store.addresses.allocate(tiny, '52:54:00:00:00:aa')).toBe('10.90.0.12');
    const others = [1, 2, 3].map((i) => store.addresses.allocate(tiny, mac(i)));
    expect(new Set(others).size).toBe(3);
    expect(others).not.toContain('10.90.0.12');
  });

  it('reuses the least recently used address of an unregistered MAC when full, and says when nothing is left', () => {
    const store = openStore(':memory:');
    // 4 addresses, one reserved: three dynamic.
    const ips = [1, 2, 3].map((i) => store.addresses.allocate(tiny, mac(i)));
    register(store, 2, ips[1]!);
    register(store, 3, ips[2]!);
    expect(store.addresses.allocate(tiny, mac(4))).toBe(ips[0]); // mac 1 is not registered: its address is reused
    register(store, 4, ips[0]!);
    expect(() => store.addresses.allocate(tiny, mac(5))).toThrow(
      'No address left on network lab: all 4 addresses of 10.90.0.10-10.90.0.13 belong to registered NICs',
    );
  });
});

describe('tokens', () => {
  it('verifies only the exact token, and re-issuing revokes the old one', () => {
    const store = openStore(':memory:');
    const first = store.tokens.issue({ name: 'kvm-1', role: 'host' });
    expect(store.tokens.verify(first)).toEqual({ name: 'kvm-1', role: 'host' });
    expect(store.tokens.verify(`${first}x`)).toBeUndefined();
    expect(store.tokens.verify(first.replace('kvm-1', 'kvm-2'))).toBeUndefined();
    expect(store.tokens.verify('nodot')).toBeUndefined();
    const second = store.tokens.issue({ name: 'kvm-1', role: 'host' });
    expect(store.tokens.verify(first)).toBeUndefined();
    expect(store.tokens.verify(second)).toEqual({ name: 'kvm-1', role: 'host' });
  });
});

describe('the store file', () => {
  it('keeps what was committed across reopening, and refuses a foreign schema version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-store-'));
    try {
      const path = join(dir, 'backend.db');
      const store = openStore(path);
      register(store, 1, '10.90.0.10');
      store.allowLists.set('vm-1', [
        { type: 'address', address: '203.0.113.1', protocol: 'tcp', ports: { from: 443, to: 443 } },
      ]);
      store.close();
      const again = openStore(path);
      expect(again.registrations.list().map((r) => r.mac)).toEqual([mac(1)]);
      expect(again.allowLists.get('vm-1')).toHaveLength(1);
      again.db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
      again.close();
      expect(() => openStore(path)).toThrow(`Store ${path}: expected schema version 3, found 99`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('migrates a version 1 store: NIC ids given, tombstones dated, tokens keep their roles', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-store-'));
    try {
      const path = join(dir, 'backend.db');
      const old = new Database(path);
      old.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE registrations (network TEXT NOT NULL, mac TEXT NOT NULL, ip TEXT NOT NULL, host_id TEXT NOT NULL,
          vm_uuid TEXT NOT NULL, vm_name TEXT NOT NULL, generation INTEGER NOT NULL, updated_at INTEGER NOT NULL,
          PRIMARY KEY (network, mac)) WITHOUT ROWID;
        CREATE TABLE deregistrations (network TEXT NOT NULL, mac TEXT NOT NULL, host_id TEXT NOT NULL,
          generation INTEGER NOT NULL, PRIMARY KEY (network, mac, host_id)) WITHOUT ROWID;
        CREATE TABLE tokens (principal TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('host', 'admin')),
          hash BLOB NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO registrations VALUES ('lab', '${mac(1)}', '10.90.0.10', 'h', 'vm-1', 'vm', 1, 0);
        INSERT INTO registrations VALUES ('lab', '${mac(2)}', '10.90.0.11', 'h', 'vm-2', 'vm', 1, 0);
        INSERT INTO deregistrations VALUES ('lab', '${mac(3)}', 'h', 5);
        INSERT INTO tokens VALUES ('ops', 'admin', x'00', 0);
      `);
      old.close();
      const store = openStore(path);
      expect(store.registrations.list().map((r) => r.nicId)).toEqual([1, 2]);
      expect(store.registrations.allocateNicId()).toBe(3);
      expect(store.deregistrations.pruneBefore(Date.now() - 60_000)).toBe(0);
      expect(store.tokens.list()).toEqual([{ name: 'ops', role: 'admin' }]);
      store.tokens.issue({ name: 'prometheus', role: 'metrics' });
      expect(store.tokens.roleOf('prometheus')).toBe('metrics');
      expect(store.registrations.list()[0]?.incomingHost).toBeUndefined();
      store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('migrates a version 2 store: registrations keep everything and have no migration under way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-store-'));
    try {
      const path = join(dir, 'backend.db');
      const store = openStore(path);
      register(store, 1, '10.90.0.10');
      const before = store.registrations.list();
      store.db.exec('DROP INDEX registrations_by_incoming');
      store.db.exec('ALTER TABLE registrations DROP COLUMN incoming_host');
      store.db.exec('ALTER TABLE registrations DROP COLUMN incoming_generation');
      store.db.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run();
      store.close();
      const again = openStore(path);
      expect(again.registrations.list()).toEqual(before);
      const [first] = before;
      if (!first) throw new Error('no registration');
      again.registrations.put({ ...first, incomingHost: 'kvm-02', incomingGeneration: 7 });
      expect(again.registrations.incomingOf('kvm-02')).toEqual([
        { ...first, incomingHost: 'kvm-02', incomingGeneration: 7 },
      ]);
      again.registrations.put(first);
      expect(again.registrations.incomingOf('kvm-02')).toEqual([]);
      expect(again.db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({ value: '3' });
      again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
