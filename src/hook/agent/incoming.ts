/**
 * The destination's note of a live migration under way: libvirt runs the
 * qemu hook's `migrate begin` on the destination only (before `prepare`,
 * `start`, `started`), and the later calls' arguments (`start begin -`) and
 * domain XML do not say the start is an incoming migration. So `migrate`
 * leaves `<spoolDir>/incoming/<vm-uuid>` (boot id and time), `start`,
 * `started` and `reconnect` read it and send their registers with the
 * `incoming` marker, and `stopped`/`release` remove it. A note from another
 * boot, or older than {@link INCOMING_MAX_AGE_MS}, does not count (a host that
 * crashed mid-migration must not start the VM fresh as "incoming"). Written
 * and read by the hook call. May not: talk to the backend.
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeExclusive } from './safe-write.js';

/** How long a note counts: a migration that takes longer registers without the marker (a plain takeover). */
export const INCOMING_MAX_AGE_MS = 24 * 60 * 60 * 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The directory of the notes under a spool directory. */
export function incomingDir(spoolDir: string): string {
  return join(spoolDir, 'incoming');
}

function noteFile(spoolDir: string, vmUuid: string): string | undefined {
  // The UUID comes from the domain XML: only a well-formed one names a file.
  return UUID.test(vmUuid) ? join(incomingDir(spoolDir), vmUuid) : undefined;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Note that `vmUuid` is migrating to this host (at `migrate begin`). No fsync:
 * a note lost to a crash costs only the marker (the register is then a plain
 * takeover, as before this feature).
 *
 * @throws when the spool directory cannot be written, or the UUID is malformed.
 */
export function noteIncoming(spoolDir: string, vmUuid: string, now = Date.now()): void {
  const file = noteFile(spoolDir, vmUuid);
  if (file === undefined) throw new Error(`expected a lower-case VM UUID, found ${JSON.stringify(vmUuid)}`);
  mkdirSync(incomingDir(spoolDir), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeExclusive(tmp, `${bootId()} ${now}\n`);
  renameSync(tmp, file);
}

/** Whether this host noted an incoming migration of `vmUuid` in this boot, less than a day ago. */
export function isIncoming(spoolDir: string, vmUuid: string, now = Date.now()): boolean {
  const file = noteFile(spoolDir, vmUuid);
  if (file === undefined) return false;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const [boot, at] = text.trim().split(/\s+/);
  const when = Number(at);
  return boot === bootId() && Number.isSafeInteger(when) && now - when >= 0 && now - when < INCOMING_MAX_AGE_MS;
}

/** Forget the note of `vmUuid` (its QEMU on this host is gone, or the migration was refused). */
export function clearIncoming(spoolDir: string, vmUuid: string): void {
  const file = noteFile(spoolDir, vmUuid);
  if (file === undefined) return;
  try {
    unlinkSync(file);
  } catch {
    // Absent: nothing to forget.
  }
}
