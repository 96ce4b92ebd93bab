import type Database from 'better-sqlite3';
import type { Registration } from '../../protocol/api.js';

interface Row {
  network: string;
  mac: string;
  ip: string;
  host_id: string;
  vm_uuid: string;
  vm_name: string;
  generation: number;
}

const toRegistration = (row: Row): Registration => ({
  hostId: row.host_id,
  vmUuid: row.vm_uuid,
  vmName: row.vm_name,
  mac: row.mac,
  network: row.network,
  ip: row.ip,
  generation: row.generation,
});

/** The registrations table: every VM NIC the backend currently lets on its networks. */
export class RegistrationTable {
  private readonly byKey;
  private readonly byHost;
  private readonly byVm;
  private readonly all;
  private readonly counts;
  private readonly upsertStatement;
  private readonly deleteStatement;

  constructor(db: Database.Database) {
    this.byKey = db.prepare<[string, string], Row>('SELECT * FROM registrations WHERE network = ? AND mac = ?');
    this.byHost = db.prepare<[string], Row>('SELECT * FROM registrations WHERE host_id = ? ORDER BY network, mac');
    this.byVm = db.prepare<[string], Row>('SELECT * FROM registrations WHERE vm_uuid = ? ORDER BY network, mac');
    this.all = db.prepare<[], Row>('SELECT * FROM registrations ORDER BY network, mac');
    this.counts = db.prepare<[], { network: string; n: number }>(
      'SELECT network, COUNT(*) AS n FROM registrations GROUP BY network ORDER BY network',
    );
    this.upsertStatement = db.prepare(
      `INSERT INTO registrations (network, mac, ip, host_id, vm_uuid, vm_name, generation, updated_at)
       VALUES (@network, @mac, @ip, @hostId, @vmUuid, @vmName, @generation, @now)
       ON CONFLICT (network, mac) DO UPDATE SET ip = excluded.ip, host_id = excluded.host_id,
         vm_uuid = excluded.vm_uuid, vm_name = excluded.vm_name, generation = excluded.generation,
         updated_at = excluded.updated_at`,
    );
    this.deleteStatement = db.prepare('DELETE FROM registrations WHERE network = ? AND mac = ?');
  }

  /** The registration of a NIC, if any. */
  get(network: string, mac: string): Registration | undefined {
    const row = this.byKey.get(network, mac);
    return row && toRegistration(row);
  }

  /** Every registration a host holds. */
  ofHost(hostId: string): Registration[] {
    return this.byHost.all(hostId).map(toRegistration);
  }

  /** Every registration of a VM (its NICs). */
  ofVm(vmUuid: string): Registration[] {
    return this.byVm.all(vmUuid).map(toRegistration);
  }

  /** Every registration. */
  list(): Registration[] {
    return this.all.all().map(toRegistration);
  }

  /** How many NICs are registered on each network. */
  countByNetwork(): Map<string, number> {
    return new Map(this.counts.all().map((row) => [row.network, row.n]));
  }

  /** Insert or replace the registration of `(network, mac)`. */
  put(registration: Registration): void {
    this.upsertStatement.run({ ...registration, now: Date.now() });
  }

  /** Remove the registration of `(network, mac)`; whether there was one. */
  delete(network: string, mac: string): boolean {
    return this.deleteStatement.run(network, mac).changes > 0;
  }
}
