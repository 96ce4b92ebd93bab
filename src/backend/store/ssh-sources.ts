import type Database from 'better-sqlite3';

/**
 * The ssh_sources table: per VM, the client networks an admin narrowed its
 * SSH access to. A VM without a row is reachable from the site's sources of
 * each network.
 */
export class SshSourcesTable {
  private readonly one;
  private readonly all;
  private readonly upsert;
  private readonly remove;

  constructor(db: Database.Database) {
    this.one = db.prepare<[string], { sources: string }>('SELECT sources FROM ssh_sources WHERE vm_uuid = ?');
    this.all = db.prepare<[], { vm_uuid: string; sources: string }>(
      'SELECT vm_uuid, sources FROM ssh_sources ORDER BY vm_uuid',
    );
    this.upsert = db.prepare(
      `INSERT INTO ssh_sources (vm_uuid, sources, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (vm_uuid) DO UPDATE SET sources = excluded.sources, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare('DELETE FROM ssh_sources WHERE vm_uuid = ?');
  }

  /** A VM's narrowed sources (CIDRs; empty: no client), or `undefined` when it has the site's. */
  get(vmUuid: string): string[] | undefined {
    const row = this.one.get(vmUuid);
    return row ? (JSON.parse(row.sources) as string[]) : undefined;
  }

  /** Every VM with narrowed sources. */
  list(): Map<string, string[]> {
    return new Map(this.all.all().map((row) => [row.vm_uuid, JSON.parse(row.sources) as string[]]));
  }

  /** Narrow a VM's sources to `sources`, or (`undefined`) give it the site's again. */
  set(vmUuid: string, sources: readonly string[] | undefined): void {
    if (sources === undefined) this.remove.run(vmUuid);
    else this.upsert.run(vmUuid, JSON.stringify([...sources]), Date.now());
  }
}
