import type Database from 'better-sqlite3';
import type { AllowEntry, AllowList } from '../../protocol/api.js';

/** The allow_lists table: each VM's egress allow-list, by VM UUID. */
export class AllowListTable {
  private readonly one;
  private readonly all;
  private readonly upsert;
  private readonly remove;

  constructor(db: Database.Database) {
    this.one = db.prepare<[string], { entries: string }>('SELECT entries FROM allow_lists WHERE vm_uuid = ?');
    this.all = db.prepare<[], { vm_uuid: string; entries: string }>(
      'SELECT vm_uuid, entries FROM allow_lists ORDER BY vm_uuid',
    );
    this.upsert = db.prepare(
      `INSERT INTO allow_lists (vm_uuid, entries, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (vm_uuid) DO UPDATE SET entries = excluded.entries, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare('DELETE FROM allow_lists WHERE vm_uuid = ?');
  }

  /** A VM's entries; empty when it has none (no egress). */
  get(vmUuid: string): AllowEntry[] {
    const row = this.one.get(vmUuid);
    return row ? (JSON.parse(row.entries) as AllowEntry[]) : [];
  }

  /** Every stored allow-list. */
  list(): AllowList[] {
    return this.all.all().map((row) => ({ vmUuid: row.vm_uuid, entries: JSON.parse(row.entries) as AllowEntry[] }));
  }

  /** Replace a VM's entries; an empty list removes the row. */
  set(vmUuid: string, entries: readonly AllowEntry[]): void {
    if (entries.length === 0) this.remove.run(vmUuid);
    else this.upsert.run(vmUuid, JSON.stringify(entries), Date.now());
  }
}
