/**
 * Counts over the store for `/metrics`: VMs per network, NICs and VMs per
 * host, SSH forwards held per network. Read-only; each is one grouped query
 * (an index-free scan of at most the registrations, ~10k rows in a few ms).
 */
import type Database from 'better-sqlite3';

/** What the store holds now, counted. */
export interface Census {
  /** Distinct VMs with a registered NIC, by network. */
  readonly vmsByNetwork: ReadonlyMap<string, number>;
  /** Registered NICs and distinct VMs, by the host that registered them. */
  readonly byHost: ReadonlyMap<string, { readonly nics: number; readonly vms: number }>;
  /** SSH forwards held by registered NICs (ports not released), by network. */
  readonly sshForwardsByNetwork: ReadonlyMap<string, number>;
}

/** The prepared census queries of one store. */
export class CensusQueries {
  private readonly vms;
  private readonly hosts;
  private readonly ssh;

  constructor(db: Database.Database) {
    this.vms = db.prepare<[], { network: string; n: number }>(
      'SELECT network, COUNT(DISTINCT vm_uuid) AS n FROM registrations GROUP BY network',
    );
    this.hosts = db.prepare<[], { host_id: string; nics: number; vms: number }>(
      'SELECT host_id, COUNT(*) AS nics, COUNT(DISTINCT vm_uuid) AS vms FROM registrations GROUP BY host_id',
    );
    this.ssh = db.prepare<[], { network: string; n: number }>(
      'SELECT network, COUNT(*) AS n FROM ssh_ports WHERE released_at IS NULL GROUP BY network',
    );
  }

  /** Count now. */
  take(): Census {
    return {
      vmsByNetwork: new Map(this.vms.all().map((row) => [row.network, row.n])),
      byHost: new Map(this.hosts.all().map((row) => [row.host_id, { nics: row.nics, vms: row.vms }])),
      sshForwardsByNetwork: new Map(this.ssh.all().map((row) => [row.network, row.n])),
    };
  }
}
