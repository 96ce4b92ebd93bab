import type Database from 'better-sqlite3';
import { SshAccessError } from '../../errors/ssh-access-error.js';
import type { Network, SshAccess } from '../../site/model.js';

/** A backend port held by a registered NIC: SSH to it reaches the NIC's port 22. */
export interface SshPort {
  readonly network: string;
  readonly port: number;
  readonly mac: string;
  readonly vmUuid: string;
}

interface Row {
  network: string;
  port: number;
  mac: string;
  vm_uuid: string;
  released_at: number | null;
}

const toPort = (row: Row): SshPort => ({ network: row.network, port: row.port, mac: row.mac, vmUuid: row.vm_uuid });

/**
 * The ssh_ports table: which backend TCP port each registered NIC of a
 * network with SSH access holds. A port is the NIC's while it is registered
 * (across restarts: the store is the truth); released, its row stays, so the
 * port goes to no other NIC for the network's quarantine, and back to the
 * same VM's NIC first. Ports are unique across networks (one nft map holds
 * every forward, keyed by port).
 *
 * Allocation: the NIC's own port; else its VM's last port for that MAC, if
 * still free; else a port never handed out (a per-network cursor walks the
 * range, so a lookup or two while the range is far from full); else the port
 * released longest ago, once its quarantine is over. Ports with a listening
 * socket of another program on the backend are skipped.
 */
export class SshPortTable {
  private readonly activeOfNic;
  private readonly releasedOfNic;
  private readonly byPort;
  private readonly inRange;
  private readonly oldestReleased;
  private readonly nextQuarantineEnd;
  private readonly insert;
  private readonly reassign;
  private readonly reactivate;
  private readonly releaseStatement;
  private readonly all;
  private readonly ofVmStatement;
  private readonly readCursor;
  private readonly writeCursor;

  constructor(db: Database.Database) {
    this.activeOfNic = db.prepare<[string, string], Row>(
      'SELECT * FROM ssh_ports WHERE network = ? AND mac = ? AND released_at IS NULL',
    );
    this.releasedOfNic = db.prepare<[string, string, string, number, number], Row>(
      `SELECT * FROM ssh_ports WHERE network = ? AND mac = ? AND vm_uuid = ? AND released_at IS NOT NULL
       AND port BETWEEN ? AND ? ORDER BY released_at DESC`,
    );
    this.byPort = db.prepare<[number], Row>('SELECT * FROM ssh_ports WHERE port = ?');
    this.inRange = db.prepare<[number, number], { held: number; all: number }>(
      'SELECT COUNT(*) AS "all", COUNT(*) - COUNT(released_at) AS held FROM ssh_ports WHERE port BETWEEN ? AND ?',
    );
    this.oldestReleased = db.prepare<[number, number, number], Row>(
      `SELECT * FROM ssh_ports WHERE released_at IS NOT NULL AND released_at <= ? AND port BETWEEN ? AND ?
       ORDER BY released_at`,
    );
    this.nextQuarantineEnd = db.prepare<[number, number, number], { at: number | null }>(
      'SELECT MIN(released_at) AS at FROM ssh_ports WHERE released_at > ? AND port BETWEEN ? AND ?',
    );
    this.insert = db.prepare(
      'INSERT INTO ssh_ports (network, port, mac, vm_uuid, released_at) VALUES (?, ?, ?, ?, NULL)',
    );
    this.reassign = db.prepare(
      'UPDATE ssh_ports SET network = ?, mac = ?, vm_uuid = ?, released_at = NULL WHERE port = ?',
    );
    this.reactivate = db.prepare('UPDATE ssh_ports SET released_at = NULL WHERE port = ?');
    this.releaseStatement = db.prepare(
      'UPDATE ssh_ports SET released_at = ? WHERE network = ? AND mac = ? AND released_at IS NULL',
    );
    this.all = db.prepare<[], Row>('SELECT * FROM ssh_ports WHERE released_at IS NULL ORDER BY port');
    this.ofVmStatement = db.prepare<[string], Row>(
      'SELECT * FROM ssh_ports WHERE vm_uuid = ? AND released_at IS NULL ORDER BY port',
    );
    this.readCursor = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    this.writeCursor = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  }

  /** The port a registered NIC holds on `network`, if any. */
  held(network: string, mac: string): number | undefined {
    return this.activeOfNic.get(network, mac)?.port;
  }

  /** Every port held by a registered NIC, by port. */
  list(): SshPort[] {
    return this.all.all().map(toPort);
  }

  /** The ports a VM's registered NICs hold. */
  ofVm(vmUuid: string): SshPort[] {
    return this.ofVmStatement.all(vmUuid).map(toPort);
  }

  /**
   * The NIC's port on `network` (with SSH access `ssh`), allocating one if it
   * holds none in the range. Call inside the transaction that registers it.
   *
   * @param inUse - Whether another program on the backend listens on a port.
   * @throws {SshAccessError} `E_SSH_PORTS_EXHAUSTED` when every port of the range is held or in
   * quarantine, `E_SSH_PORT_IN_USE` when the ports left have listening sockets; nothing is written then.
   */
  allocate(
    network: Network & { readonly ssh: SshAccess },
    nic: { readonly mac: string; readonly vmUuid: string },
    now: number,
    inUse: (port: number) => boolean,
  ): number {
    const { from, to } = network.ssh.ports;
    const active = this.activeOfNic.get(network.name, nic.mac);
    if (active && active.port >= from && active.port <= to) return active.port;
    // Nothing is written until a port is found: a refusal leaves the store as it was.
    const take = (port: number, write: () => void) => {
      if (active) this.releaseStatement.run(now, network.name, nic.mac);
      write();
      return port;
    };
    let skipped = 0;
    const usable = (port: number) => {
      if (!inUse(port)) return true;
      skipped += 1;
      return false;
    };
    for (const own of this.releasedOfNic.all(network.name, nic.mac, nic.vmUuid, from, to)) {
      if (usable(own.port)) return take(own.port, () => this.reactivate.run(own.port));
    }
    const size = to - from + 1;
    const counts = this.inRange.get(from, to) ?? { held: 0, all: 0 };
    if (counts.all < size) {
      const key = `ssh_next_port:${network.name}`;
      const stored = Number(this.readCursor.get(key)?.value);
      let port = Number.isInteger(stored) && stored >= from && stored <= to ? stored : from;
      for (let step = 0; step < size; step++, port = port >= to ? from : port + 1) {
        if (this.byPort.get(port) || !usable(port)) continue;
        const found = port;
        return take(found, () => {
          this.insert.run(network.name, found, nic.mac, nic.vmUuid);
          this.writeCursor.run(key, String(found >= to ? from : found + 1));
        });
      }
    }
    let reuse: number | undefined;
    for (const old of this.oldestReleased.iterate(now - network.ssh.quarantine, from, to)) {
      if (!usable(old.port)) continue;
      reuse = old.port;
      break; // the connection is busy while the iterator is open: write after it
    }
    if (reuse !== undefined) {
      const found = reuse;
      return take(found, () => this.reassign.run(network.name, nic.mac, nic.vmUuid, found));
    }
    const range = from === to ? `port ${from}` : `ports ${from}-${to}`;
    if (skipped > 0) {
      throw new SshAccessError(
        'E_SSH_PORT_IN_USE',
        `No SSH port for ${nic.mac} on network ${network.name}: the free ones of ${range} (${skipped}) have listening sockets of other programs on the backend (networks.${network.name}.ssh.ports: choose a range nothing else listens on)`,
        network.name,
      );
    }
    const next = this.nextQuarantineEnd.get(now - network.ssh.quarantine, from, to)?.at ?? null;
    throw new SshAccessError(
      'E_SSH_PORTS_EXHAUSTED',
      `No SSH port for ${nic.mac} on network ${network.name}: all ${size} of ${range} are held by registered NICs (${counts.held}) or in quarantine (${size - counts.held})${next === null ? '' : `, the first free again at ${new Date(next + network.ssh.quarantine).toISOString()}`}`,
      network.name,
    );
  }

  /** The NIC's port is no longer its own: released now, in quarantine for other NICs. */
  release(network: string, mac: string, now: number): void {
    this.releaseStatement.run(now, network, mac);
  }
}
