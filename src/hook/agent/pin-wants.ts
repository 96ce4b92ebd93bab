/**
 * The queue of NICs whose ports should be pinned once they exist: the network
 * hook's `port-created` runs before libvirt creates the OVS port (a
 * hot-plugged NIC has no qemu hook call at all), so it leaves an entry here
 * (`<spoolDir>/pins/<mac>.json`) with what the backend answered, and
 * `ticrypt-net host pin` (started by `ticrypt-net-host-pin.path`, and run by
 * `host reconcile`) waits for the port and pins it. Written by the hook call,
 * read by the host commands. May not: pin anything itself, or wait.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PinNic } from '../../portsec/pin.js';
import { isUnicastMac } from '../../site/mac.js';

/** One NIC waiting for its port. */
export interface PinWant extends PinNic {
  /** The backend network it was registered on. */
  readonly network: string;
  /** When the hook asked (`Date.now()`): entries older than an hour are dropped unpinned (the port never came). */
  readonly at: number;
}

/** The directory of the queue under a spool directory. */
export function pinWantsDir(spoolDir: string): string {
  return join(spoolDir, 'pins');
}

/** Leave an entry (replacing one for the same MAC). No fsync: a lost entry costs only the minute's sync. */
export function addPinWant(spoolDir: string, want: PinWant): void {
  const dir = pinWantsDir(spoolDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${want.mac.replace(/:/g, '')}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(want), { mode: 0o600 });
  renameSync(tmp, file);
}

/** Every entry, oldest first; unreadable ones are removed. */
export function listPinWants(spoolDir: string): { file: string; want: PinWant }[] {
  const dir = pinWantsDir(spoolDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^[0-9a-f]{12}\.json$/.test(n));
  } catch {
    return [];
  }
  const entries: { file: string; want: PinWant }[] = [];
  for (const name of names) {
    const file = join(dir, name);
    try {
      const want = JSON.parse(readFileSync(file, 'utf8')) as Partial<PinWant>;
      if (typeof want.mac !== 'string' || !isUnicastMac(want.mac) || typeof want.vmUuid !== 'string') {
        throw new Error('malformed');
      }
      entries.push({ file, want: want as PinWant });
    } catch {
      removePinWant(file);
    }
  }
  return entries.sort((a, b) => a.want.at - b.want.at);
}

/** Remove an entry (gone already is fine). */
export function removePinWant(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}
