import type Database from 'better-sqlite3';

/**
 * The deregistrations table (tombstones): per NIC and host, the newest
 * generation of a deregistration of a NIC that host held. It makes the order
 * of one host's events hold at the backend too: a register older than that
 * host's last deregistration of the NIC is stale. Tombstones older than the
 * retention period are pruned.
 */
export class DeregistrationTable {
  private readonly one;
  private readonly upsert;
  private readonly prune;
  private readonly count;

  constructor(db: Database.Database) {
    this.one = db.prepare<[string, string, string], { generation: number }>(
      'SELECT generation FROM deregistrations WHERE network = ? AND mac = ? AND host_id = ?',
    );
    this.upsert = db.prepare(
      `INSERT INTO deregistrations (network, mac, host_id, generation, recorded_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (network, mac, host_id) DO UPDATE SET generation = max(generation, excluded.generation),
         recorded_at = excluded.recorded_at`,
    );
    this.prune = db.prepare('DELETE FROM deregistrations WHERE recorded_at < ?');
    this.count = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM deregistrations');
  }

  /** The newest deregistration generation `hostId` sent for the NIC, if any. */
  latest(network: string, mac: string, hostId: string): number | undefined {
    return this.one.get(network, mac, hostId)?.generation;
  }

  /** Remember a deregistration (keeps the newest generation), at `now` (ms). */
  record(network: string, mac: string, hostId: string, generation: number, now = Date.now()): void {
    this.upsert.run(network, mac, hostId, generation, now);
  }

  /** Forget tombstones recorded before `before` (ms); how many went. */
  pruneBefore(before: number): number {
    return this.prune.run(before).changes;
  }

  /** How many tombstones are kept. */
  size(): number {
    return this.count.get()?.n ?? 0;
  }
}
