import type Database from 'better-sqlite3';

/**
 * The deregistrations table: per NIC and host, the newest generation of a
 * deregistration. It makes the order of one host's events hold at the
 * backend too: a register older than that host's last deregistration of the
 * NIC is stale.
 */
export class DeregistrationTable {
  private readonly one;
  private readonly upsert;

  constructor(db: Database.Database) {
    this.one = db.prepare<[string, string, string], { generation: number }>(
      'SELECT generation FROM deregistrations WHERE network = ? AND mac = ? AND host_id = ?',
    );
    this.upsert = db.prepare(
      `INSERT INTO deregistrations (network, mac, host_id, generation) VALUES (?, ?, ?, ?)
       ON CONFLICT (network, mac, host_id) DO UPDATE SET generation = max(generation, excluded.generation)`,
    );
  }

  /** The newest deregistration generation `hostId` sent for the NIC, if any. */
  latest(network: string, mac: string, hostId: string): number | undefined {
    return this.one.get(network, mac, hostId)?.generation;
  }

  /** Remember a deregistration (keeps the newest generation). */
  record(network: string, mac: string, hostId: string, generation: number): void {
    this.upsert.run(network, mac, hostId, generation);
  }
}
