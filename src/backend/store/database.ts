import Database from 'better-sqlite3';
import { StoreError } from '../../errors/store-error.js';

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
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
  PRIMARY KEY (network, mac)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registrations_by_host ON registrations (host_id);
CREATE INDEX IF NOT EXISTS registrations_by_vm ON registrations (vm_uuid);
-- The newest deregistration each host sent for a NIC: a register from that host with an older generation is
-- stale (it was spooled or reordered), so a stopped VM is never re-opened by a late event.
CREATE TABLE IF NOT EXISTS deregistrations (
  network TEXT NOT NULL,
  mac TEXT NOT NULL,
  host_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  PRIMARY KEY (network, mac, host_id)
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
-- API principals: one per host, plus admins. Only a SHA-256 of each token is kept.
CREATE TABLE IF NOT EXISTS tokens (
  principal TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('host', 'admin')),
  hash BLOB NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

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
  db.exec(SCHEMA);
  const version = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get();
  if (version === undefined) {
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
  } else if (Number(version.value) !== SCHEMA_VERSION) {
    db.close();
    throw new StoreError('E_STORE', `Store ${path}: expected schema version ${SCHEMA_VERSION}, found ${version.value}`);
  }
  return db;
}
