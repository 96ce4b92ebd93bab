import type Database from 'better-sqlite3';

/**
 * The placements table: per VM, the hosts the VM launcher says it may run on
 * (one, or two during a migration). On a network whose placement is
 * `enforced`, only those hosts may register the VM's NICs.
 */
export class PlacementTable {
  private readonly one;
  private readonly upsert;
  private readonly remove;

  constructor(db: Database.Database) {
    this.one = db.prepare<[string], { hosts: string }>('SELECT hosts FROM placements WHERE vm_uuid = ?');
    this.upsert = db.prepare(
      `INSERT INTO placements (vm_uuid, hosts, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (vm_uuid) DO UPDATE SET hosts = excluded.hosts, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare('DELETE FROM placements WHERE vm_uuid = ?');
  }

  /** The hosts a VM is placed on; empty when it is placed nowhere. */
  get(vmUuid: string): string[] {
    const row = this.one.get(vmUuid);
    return row ? (JSON.parse(row.hosts) as string[]) : [];
  }

  /** Replace a VM's placement; an empty list removes the row. */
  set(vmUuid: string, hosts: readonly string[]): void {
    if (hosts.length === 0) this.remove.run(vmUuid);
    else this.upsert.run(vmUuid, JSON.stringify([...hosts]), Date.now());
  }
}
