import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { StoreError } from '../../errors/store-error.js';
import { intToIpv4, ipv4ToInt } from '../../site/address.js';
import type { Network } from '../../site/model.js';

/**
 * IP address management for one store: every MAC gets an address from its
 * network's DHCP range, the same one every time while the range has room.
 *
 * A new MAC's first candidate is a hash of the MAC into the range, then the
 * next addresses in turn (open addressing): one or two index look-ups while
 * the range is far from full, whatever the number of VMs. Addresses stay
 * bound to their MAC after deregistration; when the range is full, the
 * least recently used address of a MAC that is not registered is reused.
 * Site reservations always get their reserved address, and no one else does.
 */
export class AddressTable {
  private readonly byMac;
  private readonly byIp;
  private readonly insert;
  private readonly touch;
  private readonly staleOldest;
  private readonly remove;

  constructor(db: Database.Database) {
    this.byMac = db.prepare<[string, string], { ip: string }>('SELECT ip FROM addresses WHERE network = ? AND mac = ?');
    this.byIp = db.prepare<[string, string], { mac: string }>('SELECT mac FROM addresses WHERE network = ? AND ip = ?');
    this.insert = db.prepare('INSERT INTO addresses (network, mac, ip, last_used) VALUES (?, ?, ?, ?)');
    this.touch = db.prepare('UPDATE addresses SET last_used = ? WHERE network = ? AND mac = ?');
    this.staleOldest = db.prepare<[string], { mac: string; ip: string }>(
      `SELECT a.mac, a.ip FROM addresses a
       WHERE a.network = ? AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.network = a.network AND r.mac = a.mac)
       ORDER BY a.last_used LIMIT 1`,
    );
    this.remove = db.prepare('DELETE FROM addresses WHERE network = ? AND mac = ?');
  }

  /**
   * The address of `mac` on `network`, allocating one if it has none.
   * Call inside the transaction that registers the NIC.
   *
   * @throws {StoreError} `E_ADDRESS_EXHAUSTED` when every address of the range is bound to a registered NIC.
   */
  allocate(network: Network, mac: string): string {
    const now = Date.now();
    const reserved = network.reservations.find((r) => r.mac === mac);
    if (reserved) return reserved.ip;
    const known = this.byMac.get(network.name, mac);
    if (known) {
      this.touch.run(now, network.name, mac);
      return known.ip;
    }
    const excluded = new Set([network.gateway, ...network.reservations.map((r) => r.ip)]);
    const start = ipv4ToInt(network.dhcp.start);
    const size = network.dhcp.size;
    const first = createHash('sha256').update(mac).digest().readUInt32BE(0) % size;
    for (let step = 0; step < size; step++) {
      const ip = intToIpv4(start + ((first + step) % size));
      if (excluded.has(ip) || this.byIp.get(network.name, ip)) continue;
      this.insert.run(network.name, mac, ip, now);
      return ip;
    }
    const stale = this.staleOldest.get(network.name);
    if (!stale) {
      throw new StoreError(
        'E_ADDRESS_EXHAUSTED',
        `No address left on network ${network.name}: all ${size} addresses of ${network.dhcp.start}-${network.dhcp.end} belong to registered NICs`,
      );
    }
    this.remove.run(network.name, stale.mac);
    this.insert.run(network.name, mac, stale.ip, now);
    return stale.ip;
  }
}
