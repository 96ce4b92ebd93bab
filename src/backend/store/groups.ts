import type Database from 'better-sqlite3';
import type { PeerGroup } from '../../protocol/api.js';

/**
 * VM groups (port security's `peers: groups`): a group per name with a stable
 * integer id (never reused: hosts mark frames with it), and each VM's group by
 * UUID, so it follows the VM across hosts and migrations. Its tables are
 * created here (a store written before them gains them at its next open).
 */
export class GroupTable {
  private readonly ofVm;
  private readonly byName;
  private readonly create;
  private readonly assign;
  private readonly unassign;
  private readonly peersOf;

  constructor(db: Database.Database) {
    db.exec(`
CREATE TABLE IF NOT EXISTS vm_group_names (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE
);
-- Each VM's group on groups networks; a VM without a row reaches the gateway only.
CREATE TABLE IF NOT EXISTS vm_groups (
  vm_uuid TEXT PRIMARY KEY,
  group_id INTEGER NOT NULL REFERENCES vm_group_names (id),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vm_groups_by_group ON vm_groups (group_id);
`);
    this.ofVm = db.prepare<[string], { id: number; name: string }>(
      'SELECT g.id, g.name FROM vm_groups v JOIN vm_group_names g ON g.id = v.group_id WHERE v.vm_uuid = ?',
    );
    this.byName = db.prepare<[string], { id: number }>('SELECT id FROM vm_group_names WHERE name = ?');
    this.create = db.prepare('INSERT INTO vm_group_names (name) VALUES (?)');
    this.assign = db.prepare(
      `INSERT INTO vm_groups (vm_uuid, group_id, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (vm_uuid) DO UPDATE SET group_id = excluded.group_id, updated_at = excluded.updated_at`,
    );
    this.unassign = db.prepare('DELETE FROM vm_groups WHERE vm_uuid = ?');
    // The groups with a VM registered on the network by the host, and every registered NIC of theirs there.
    this.peersOf = db.prepare<[string, string, string, string], { id: number; name: string; mac: string; ip: string }>(
      `SELECT g.id, g.name, r.mac, r.ip
         FROM vm_group_names g
         JOIN vm_groups v ON v.group_id = g.id
         JOIN registrations r ON r.vm_uuid = v.vm_uuid AND r.network = ?
        WHERE g.id IN (SELECT v2.group_id FROM vm_groups v2
                         JOIN registrations r2 ON r2.vm_uuid = v2.vm_uuid
                        WHERE r2.network = ? AND (r2.host_id = ? OR r2.incoming_host = ?))
        ORDER BY g.id, r.mac`,
    );
  }

  /** A VM's group, if it has one. */
  get(vmUuid: string): { id: number; name: string } | undefined {
    return this.ofVm.get(vmUuid);
  }

  /** Put a VM in the group `name` (created with a new id when new), or in none (`null`). */
  set(vmUuid: string, name: string | null): void {
    if (name === null) {
      this.unassign.run(vmUuid);
      return;
    }
    let id = this.byName.get(name)?.id;
    if (id === undefined) id = Number(this.create.run(name).lastInsertRowid);
    this.assign.run(vmUuid, id, Date.now());
  }

  /** The groups a host needs on a network: those with a VM it registered there, with all their members there. */
  peers(network: string, hostId: string): PeerGroup[] {
    const groups = new Map<number, { id: number; name: string; members: { mac: string; ip: string }[] }>();
    for (const row of this.peersOf.all(network, network, hostId, hostId)) {
      const group = groups.get(row.id) ?? { id: row.id, name: row.name, members: [] };
      group.members.push({ mac: row.mac, ip: row.ip });
      groups.set(row.id, group);
    }
    return [...groups.values()];
  }
}
