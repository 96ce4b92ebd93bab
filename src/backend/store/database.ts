import Database from 'better-sqlite3';
import { StoreError } from '../../errors/store-error.js';

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = 3;

const META = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

const SCHEMA = `
-- One row per registered VM NIC; the store is the truth the firewall and dnsmasq are rebuilt from.
CREATE TABLE IF NOT EXISTS registrations (
  network TEXT NOT NULL,
  mac TEXT NOT NULL,
  ip TEXT NOT NULL,
  host_id TEXT NOT NULL,
  vm_uuid TEXT NOT NULL,
  vm_name TEXT NOT NULL,
  generation INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- The NIC's id in the firewall (its elements' key, its flows' ct mark); unique, not reused soon.
  nic_id INTEGER NOT NULL,
  -- A live migration under way: the destination host that registered the NIC with the migration marker, and the
  -- generation it did so at. The owner (host_id) keeps the NIC until its stop hands it over; NULL: none.
  incoming_host TEXT,
  incoming_generation INTEGER,
  PRIMARY KEY (network, mac)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registrations_by_host ON registrations (host_id);
CREATE INDEX IF NOT EXISTS registrations_by_vm ON registrations (vm_uuid);
CREATE UNIQUE INDEX IF NOT EXISTS registrations_by_nic_id ON registrations (nic_id);
CREATE INDEX IF NOT EXISTS registrations_by_incoming ON registrations (incoming_host) WHERE incoming_host IS NOT NULL;
-- The newest deregistration each host sent for a NIC it held: a register from that host with an older generation
-- is stale (it was spooled or reordered), so a stopped VM is never re-opened by a late event. Pruned after the
-- retention period (backend.registrations.tombstoneRetention).
CREATE TABLE IF NOT EXISTS deregistrations (
  network TEXT NOT NULL,
  mac TEXT NOT NULL,
  host_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (network, mac, host_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deregistrations_by_age ON deregistrations (recorded_at);
-- Where the VM launcher says each VM may run: the hosts allowed to register its NICs on enforced networks.
CREATE TABLE IF NOT EXISTS placements (
  vm_uuid TEXT PRIMARY KEY,
  hosts TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
-- Addresses handed out, kept after deregistration so a MAC gets the same IP back.
CREATE TABLE IF NOT EXISTS addresses (
  network TEXT NOT NULL,
  mac TEXT NOT NULL,
  ip TEXT NOT NULL,
  last_used INTEGER NOT NULL,
  PRIMARY KEY (network, mac),
  UNIQUE (network, ip)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS allow_lists (
  vm_uuid TEXT PRIMARY KEY,
  entries TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
-- SSH access: the backend port each registered NIC of a network with SSH access holds (port -> its port 22).
-- Kept after release (released_at), so a port goes to no other NIC during the network's quarantine, and back to
-- the same VM's NIC first. One port, one row, across networks: one nft map holds every forward.
CREATE TABLE IF NOT EXISTS ssh_ports (
  port INTEGER PRIMARY KEY,
  network TEXT NOT NULL,
  mac TEXT NOT NULL,
  vm_uuid TEXT NOT NULL,
  released_at INTEGER
);
CREATE INDEX IF NOT EXISTS ssh_ports_by_nic ON ssh_ports (network, mac);
CREATE INDEX IF NOT EXISTS ssh_ports_by_vm ON ssh_ports (vm_uuid);
CREATE INDEX IF NOT EXISTS ssh_ports_by_release ON ssh_ports (released_at);
-- Per VM, the client networks an admin narrowed its SSH access to (no row: the site's sources).
CREATE TABLE IF NOT EXISTS ssh_sources (
  vm_uuid TEXT PRIMARY KEY,
  sources TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
-- API principals: one per host, admins, and metrics scrapers. Only a SHA-256 of each token is kept.
CREATE TABLE IF NOT EXISTS tokens (
  principal TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('host', 'admin', 'metrics')),
  hash BLOB NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Version 1 to 2: NIC ids, tombstone ages, placements, the metrics role. */
function migrateFrom1(db: Database.Database): void {
  const now = Date.now();
  db.exec('ALTER TABLE registrations ADD COLUMN nic_id INTEGER NOT NULL DEFAULT 0');
  const keys = db.prepare<[], { network: string; mac: string }>('SELECT network, mac FROM registrations').all();
  const setId = db.prepare('UPDATE registrations SET nic_id = ? WHERE network = ? AND mac = ?');
  keys.forEach((k, i) => setId.run(i + 1, k.network, k.mac));
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_nic_id', ?)").run(String(keys.length + 1));
  db.exec('ALTER TABLE deregistrations ADD COLUMN recorded_at INTEGER NOT NULL DEFAULT 0');
  db.prepare('UPDATE deregistrations SET recorded_at = ?').run(now);
  db.exec(`CREATE TABLE tokens_v2 (
    principal TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('host', 'admin', 'metrics')),
    hash BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO tokens_v2 SELECT principal, role, hash, created_at FROM tokens;
  DROP TABLE tokens;
  ALTER TABLE tokens_v2 RENAME TO tokens;`);
}

/** Version 2 to 3: the live migration under way per NIC (`incoming_host`, `incoming_generation`). */
function migrateFrom2(db: Database.Database): void {
  db.exec('ALTER TABLE registrations ADD COLUMN incoming_host TEXT');
  db.exec('ALTER TABLE registrations ADD COLUMN incoming_generation INTEGER');
}

/**
 * Open (creating if needed) the backend's SQLite store: WAL journal, full
 * sync on commit (a registration the API acknowledged survives a power cut),
 * foreign keys on, schema applied.
 *
 * @param path - A file path, or `:memory:` for tests.
 * @throws {StoreError} `E_STORE` on a store written by an incompatible version.
 */
export function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(META);
  const version = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get();
  const setVersion = () =>
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
  if (version === undefined) {
    db.transaction(() => {
      db.exec(SCHEMA);
      setVersion();
    })();
  } else if (Number(version.value) === 1 || Number(version.value) === 2) {
    const from = Number(version.value);
    db.transaction(() => {
      if (from === 1) migrateFrom1(db);
      migrateFrom2(db);
      db.exec(SCHEMA);
      setVersion();
    })();
  } else if (Number(version.value) === SCHEMA_VERSION) {
    db.exec(SCHEMA);
  } else {
    db.close();
    throw new StoreError('E_STORE', `Store ${path}: expected schema version ${SCHEMA_VERSION}, found ${version.value}`);
  }
  return db;
}
