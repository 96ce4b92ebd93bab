import type Database from 'better-sqlite3';
import { StoreError } from '../../errors/store-error.js';
import type { Registration } from '../../protocol/api.js';
import { MAX_NIC_ID } from '../nft/marks.js';

interface Row {
  network: string;
  mac: string;
  ip: string;
  host_id: string;
  vm_uuid: string;
  vm_name: string;
  generation: number;
  nic_id: number;
  incoming_host: string | null;
  incoming_generation: number | null;
}

const toRegistration = (row: Row): Registration => ({
  hostId: row.host_id,
  vmUuid: row.vm_uuid,
  vmName: row.vm_name,
  mac: row.mac,
  network: row.network,
  ip: row.ip,
  generation: row.generation,
  nicId: row.nic_id,
  ...(row.incoming_host === null || row.incoming_generation === null
    ? {}
    : { incomingHost: row.incoming_host, incomingGeneration: row.incoming_generation }),
});

/** The registrations table: every VM NIC the backend currently lets on its networks. */
export class RegistrationTable {
  private readonly byKey;
  private readonly byHost;
  private readonly byVm;
  private readonly byIncoming;
  private readonly all;
  private readonly counts;
  private readonly upsertStatement;
  private readonly deleteStatement;
  private readonly hostCount;
  private readonly hostCounts;
  private readonly vmCount;
  private readonly idInUse;
  private readonly readNextId;
  private readonly writeNextId;

  constructor(db: Database.Database) {
    this.byKey = db.prepare<[string, string], Row>('SELECT * FROM registrations WHERE network = ? AND mac = ?');
    this.byHost = db.prepare<[string], Row>('SELECT * FROM registrations WHERE host_id = ? ORDER BY network, mac');
    this.byVm = db.prepare<[string], Row>('SELECT * FROM registrations WHERE vm_uuid = ? ORDER BY network, mac');
    this.byIncoming = db.prepare<[string], Row>(
      'SELECT * FROM registrations WHERE incoming_host = ? ORDER BY network, mac',
    );
    this.all = db.prepare<[], Row>('SELECT * FROM registrations ORDER BY network, mac');
    this.counts = db.prepare<[], { network: string; n: number }>(
      'SELECT network, COUNT(*) AS n FROM registrations GROUP BY network ORDER BY network',
    );
    this.upsertStatement = db.prepare(
      `INSERT INTO registrations (network, mac, ip, host_id, vm_uuid, vm_name, generation, updated_at, nic_id,
         incoming_host, incoming_generation)
       VALUES (@network, @mac, @ip, @hostId, @vmUuid, @vmName, @generation, @now, @nicId,
         @incomingHost, @incomingGeneration)
       ON CONFLICT (network, mac) DO UPDATE SET ip = excluded.ip, host_id = excluded.host_id,
         vm_uuid = excluded.vm_uuid, vm_name = excluded.vm_name, generation = excluded.generation,
         updated_at = excluded.updated_at, nic_id = excluded.nic_id,
         incoming_host = excluded.incoming_host, incoming_generation = excluded.incoming_generation`,
    );
    this.deleteStatement = db.prepare('DELETE FROM registrations WHERE network = ? AND mac = ?');
    this.hostCount = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM registrations WHERE host_id = ?');
    this.hostCounts = db.prepare<[], { host_id: string; n: number }>(
      'SELECT host_id, COUNT(*) AS n FROM registrations GROUP BY host_id ORDER BY host_id',
    );
    this.vmCount = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM registrations WHERE vm_uuid = ?');
    this.idInUse = db.prepare<[number], { n: number }>('SELECT 1 AS n FROM registrations WHERE nic_id = ?');
    this.readNextId = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'next_nic_id'");
    this.writeNextId = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_nic_id', ?)");
  }

  /**
   * A fresh NIC id: the next of a counter that runs 1 to 0xfffffe and wraps,
   * skipping ids in use, so an id comes back only after 16 million others
   * (flows that an old holder of an id opened are long gone by then). Call
   * inside the transaction that stores the registration.
   *
   * @throws {StoreError} `E_STORE` when every id is in use.
   */
  allocateNicId(): number {
    let next = Number(this.readNextId.get()?.value ?? 1);
    if (!Number.isInteger(next) || next < 1 || next > MAX_NIC_ID) next = 1;
    for (let tries = 0; tries < MAX_NIC_ID; tries++) {
      const id = next;
      next = next >= MAX_NIC_ID ? 1 : next + 1;
      if (this.idInUse.get(id)) continue;
      this.writeNextId.run(String(next));
      return id;
    }
    throw new StoreError('E_STORE', `No NIC id left: all ${MAX_NIC_ID} are in use`);
  }

  /** How many registrations a host holds. */
  countOfHost(hostId: string): number {
    return this.hostCount.get(hostId)?.n ?? 0;
  }

  /** How many registrations each host holds. */
  countByHost(): Map<string, number> {
    return new Map(this.hostCounts.all().map((row) => [row.host_id, row.n]));
  }

  /** How many NICs of a VM are registered. */
  countOfVm(vmUuid: string): number {
    return this.vmCount.get(vmUuid)?.n ?? 0;
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

  /** Every registration on which `hostId` is the incoming host of a live migration under way. */
  incomingOf(hostId: string): Registration[] {
    return this.byIncoming.all(hostId).map(toRegistration);
  }

  /** Every registration. */
  list(): Registration[] {
    return this.all.all().map(toRegistration);
  }

  /** How many NICs are registered on each network. */
  countByNetwork(): Map<string, number> {
    return new Map(this.counts.all().map((row) => [row.network, row.n]));
  }

  /** Insert or replace the registration of `(network, mac)` (its incoming host too: absent clears it). */
  put(registration: Registration): void {
    this.upsertStatement.run({
      hostId: registration.hostId,
      vmUuid: registration.vmUuid,
      vmName: registration.vmName,
      mac: registration.mac,
      network: registration.network,
      ip: registration.ip,
      generation: registration.generation,
      nicId: registration.nicId,
      incomingHost: registration.incomingHost ?? null,
      incomingGeneration: registration.incomingHost === undefined ? null : (registration.incomingGeneration ?? 0),
      now: Date.now(),
    });
  }

  /** Remove the registration of `(network, mac)`; whether there was one. */
  delete(network: string, mac: string): boolean {
    return this.deleteStatement.run(network, mac).changes > 0;
  }
}
