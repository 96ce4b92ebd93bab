/**
 * The edge that keeps dnsmasq's `dhcp-hostsdir`: one file per registered MAC,
 * written atomically (temporary dotfile, fsync, rename, fsync of the directory),
 * so dnsmasq never reads half a file and a crash leaves the old or the new
 * entry, never neither. ({@link HostsDir.sync}, the rebuild at start, skips
 * the fsyncs: the next start rewrites whatever a crash lost.)
 *
 * dnsmasq reads new and renamed-in files by itself (inotify), but keeps a
 * record whose file was removed or changed until it gets SIGHUP. So a removal,
 * or a change of an existing entry, is followed by `reload` (a SIGHUP).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Network } from '../../site/model.js';
import { eachLimited } from '../each-limited.js';
import type { Registration } from '../../protocol/api.js';
import { hostEntryFileName, macFromHostEntryFileName, renderHostEntry } from './host-entry.js';

/** How many entries {@link HostsDir.sync} writes at once. */
const SYNC_CONCURRENCY = 16;

/** What writing an entry did: a new file, nothing (same content), or a changed file (reload sent). */
export type HostEntryWrite = 'created' | 'unchanged' | 'replaced';

/** What {@link HostsDir.sync} changed. */
export interface HostsDirSync {
  readonly created: number;
  readonly replaced: number;
  readonly removed: number;
  readonly unchanged: number;
  /** Whether dnsmasq was sent a reload. */
  readonly reloaded: boolean;
}

/** How {@link HostsDir} tells dnsmasq to drop stale records: usually `() => dnsmasq.reload()`. */
export type Reload = () => void | Promise<void>;

/**
 * A network's host entry directory.
 *
 * @example
 * const hosts = new HostsDir('/var/lib/ticrypt-net/dnsmasq/secure/hosts', { network, reload: () => dnsmasq.reload() });
 * await hosts.put(registration); // the VM's next DHCP request gets registration.ip
 * await hosts.remove(registration.mac); // file gone, dnsmasq SIGHUPed: no lease any more
 */
export class HostsDir {
  readonly path: string;
  private readonly reload: Reload;
  private readonly network: Network | undefined;

  constructor(path: string, options: { reload: Reload; network?: Network }) {
    this.path = path;
    this.reload = options.reload;
    this.network = options.network;
  }

  /** Create the directory (and parents) if missing, readable by dnsmasq after it drops privileges. */
  async ensure(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o755 });
  }

  /** Write (or rewrite) the entry for a registration; a changed entry is followed by a reload. */
  async put(registration: Pick<Registration, 'mac' | 'ip'>): Promise<HostEntryWrite> {
    const outcome = await this.write(registration);
    if (outcome === 'replaced') await this.reload();
    return outcome;
  }

  /** Remove the entry for a MAC, then reload. Returns whether there was one (no reload if not). */
  async remove(mac: string): Promise<boolean> {
    const removed = await this.unlink(hostEntryFileName(mac));
    if (removed) await this.reload();
    return removed;
  }

  /** The MACs that have an entry now. Reads the whole directory: for start-up and checks, not per event. */
  async macs(): Promise<string[]> {
    const names = await readdir(this.path);
    return names.flatMap((name) => macFromHostEntryFileName(name) ?? []).sort();
  }

  /**
   * Make the directory hold exactly these registrations' entries (the full
   * rebuild at daemon start), with at most one reload at the end. Stray
   * temporary files are removed too. Reads the whole directory.
   *
   * Entries are written {@link SYNC_CONCURRENCY} at a time and without a
   * per-file fsync: the daemon runs this at every start, from the store, so an
   * entry a power cut loses is rewritten then; one directory fsync at the end.
   */
  async sync(registrations: readonly Pick<Registration, 'mac' | 'ip'>[]): Promise<HostsDirSync> {
    await this.ensure();
    const wanted = new Map(registrations.map((r) => [hostEntryFileName(r.mac), r]));
    const counts = { created: 0, replaced: 0, unchanged: 0 };
    await eachLimited([...wanted.values()], SYNC_CONCURRENCY, async (registration) => {
      counts[await this.write(registration, false)] += 1;
    });
    const { created, replaced, unchanged } = counts;
    let removed = 0;
    for (const name of await readdir(this.path)) {
      if (wanted.has(name)) continue;
      if (macFromHostEntryFileName(name) !== undefined) {
        if (await this.unlink(name, false)) removed += 1;
      } else if (name.startsWith('.') && name.endsWith('.tmp')) {
        await rm(join(this.path, name), { force: true });
      }
    }
    await this.syncDirectory();
    const reloaded = replaced + removed > 0;
    if (reloaded) await this.reload();
    return { created, replaced, removed, unchanged, reloaded };
  }

  /** Write one entry atomically (temporary file, rename); `durable`: fsync the file and the directory too. */
  private async write(registration: Pick<Registration, 'mac' | 'ip'>, durable = true): Promise<HostEntryWrite> {
    const content = renderHostEntry(registration, this.network);
    const name = hostEntryFileName(registration.mac);
    const target = join(this.path, name);
    const before = await readFile(target, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (before === content) return 'unchanged';
    // A dotfile: dnsmasq ignores it on inotify and on SIGHUP alike until it is renamed into place.
    const temporary = join(this.path, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(content);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    if (durable) await this.syncDirectory();
    return before === undefined ? 'created' : 'replaced';
  }

  private async unlink(name: string, durable = true): Promise<boolean> {
    try {
      await unlink(join(this.path, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    if (durable) await this.syncDirectory();
    return true;
  }

  private async syncDirectory(): Promise<void> {
    const handle = await open(this.path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
