import type Database from 'better-sqlite3';
import { AddressTable } from './addresses.js';
import { AllowListTable } from './allow-lists.js';
import { openDatabase } from './database.js';
import { DeregistrationTable } from './deregistrations.js';
import { PlacementTable } from './placements.js';
import { GroupTable } from './groups.js';
import { RegistrationTable } from './registrations.js';
import { SshPortTable } from './ssh-ports.js';
import { SshSourcesTable } from './ssh-sources.js';
import { TokenTable } from './tokens.js';

/**
 * The backend's store: SQLite, the one truth the firewall and dnsmasq are
 * rebuilt from at start.
 *
 * @example
 * const store = openStore('/var/lib/ticrypt-net/backend.db');
 * store.transaction(() => store.registrations.put(registration));
 */
export class Store {
  readonly registrations: RegistrationTable;
  readonly addresses: AddressTable;
  readonly allowLists: AllowListTable;
  readonly tokens: TokenTable;
  readonly deregistrations: DeregistrationTable;
  readonly placements: PlacementTable;
  readonly groups: GroupTable;
  readonly sshPorts: SshPortTable;
  readonly sshSources: SshSourcesTable;

  constructor(readonly db: Database.Database) {
    this.registrations = new RegistrationTable(db);
    this.addresses = new AddressTable(db);
    this.allowLists = new AllowListTable(db);
    this.tokens = new TokenTable(db);
    this.deregistrations = new DeregistrationTable(db);
    this.placements = new PlacementTable(db);
    this.groups = new GroupTable(db);
    this.sshPorts = new SshPortTable(db);
    this.sshSources = new SshSourcesTable(db);
  }

  /** Run `fn` in one SQLite transaction: all of it is stored, or none (also when `fn` throws). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Close the database. */
  close(): void {
    this.db.close();
  }
}

/** Open the store at `path` (`:memory:` for tests). */
export function openStore(path: string): Store {
  return new Store(openDatabase(path));
}
