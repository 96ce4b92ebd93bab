/**
 * The real hooks installed into the real libvirtd for a lab test, as the
 * README says (`ticrypt-net hook install`, hook.yaml, a libvirtd restart),
 * and put back afterwards exactly as found: an operator's hook.yaml set aside
 * and restored, directories the test created removed (and the hook bundle's
 * copy under /usr/local/lib when the test made it), libvirtd restarted (or
 * ended, if it was not running), handing over scripts/lab-daemons.sh's record.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { HOOK_LIB_DIR } from '../../src/names.js';
import { CLI, endPid } from './service.js';

/** libvirt's hook directory and the hook configuration the installed hooks read. */
export const HOOKS = '/etc/libvirt/hooks';
export const HOOK_CONFIG = '/etc/ticrypt-net/hook.yaml';

const virsh = (...args: string[]) => execa('virsh', ['-q', '-c', 'qemu:///system', ...args], { timeout: 150_000 });

/** The pid of the (first) live process named `name` (a zombie reaped late is not one). */
export async function pidOf(name: string): Promise<number | undefined> {
  return (
    Number((await execa('pgrep', ['-r', 'R,S,D,T,I', '-x', name], { reject: false })).stdout.split('\n')[0]) ||
    undefined
  );
}

/** Poll `probe` every 250 ms until it gives a value, at most `ms`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
}

/** Restart libvirtd (it discovers hooks only at start), handing over the lab record. */
export async function restartLibvirtd(): Promise<void> {
  const pid = await pidOf('libvirtd');
  if (pid !== undefined) await endPid(pid, 10_000);
  await execa('libvirtd', ['-d']);
  for (let i = 0; i < 100; i++) {
    if (
      await virsh('version').then(
        () => true,
        () => false,
      )
    ) {
      await handOverLabRecord(pid);
      return;
    }
    await sleep(100);
  }
  throw new Error('libvirtd did not come back');
}

/** If scripts/lab-daemons.sh recorded the libvirtd just replaced, record its successor, so its `stop` ends that one. */
async function handOverLabRecord(old: number | undefined): Promise<void> {
  const record = '/run/ticrypt-net-lab/libvirtd.pid';
  const recorded = Number((await readFile(record, 'utf8').catch(() => '')).trim());
  const now = await pidOf('libvirtd');
  if (old !== undefined && recorded === old && now !== undefined) await writeFile(record, `${now}\n`);
}

/** Installed hooks, to be put back with {@link LabHooks.restore}. */
export interface LabHooks {
  /** Remove the hooks, put back the configuration found, restart libvirtd (or end it if it was not running). */
  restore(): Promise<void>;
}

/**
 * Install the hooks (beside a foreign `qemu` hook when there is one), write
 * `config` as hook.yaml, and restart libvirtd to load them.
 *
 * @param extra more executables to put into `qemu.d/` (name, text), removed by `restore`.
 */
export async function installLabHooks(
  config: Record<string, unknown>,
  extra: readonly [string, string][] = [],
): Promise<LabHooks> {
  const libvirtdWasRunning = (await pidOf('libvirtd')) !== undefined;
  const qemuD =
    existsSync(join(HOOKS, 'qemu')) && !readFileSync(join(HOOKS, 'qemu'), 'utf8').includes('# ticrypt-net qemu hook');
  const createdDirs: string[] = [];
  for (const dir of [HOOKS, join(HOOKS, 'qemu.d'), join(HOOKS, 'network.d'), '/etc/ticrypt-net']) {
    if (!existsSync(dir)) createdDirs.unshift(dir);
  }
  /** The hook's bundle copy `hook install` makes: removed afterwards when this install made it. */
  const libDir = dirname(HOOK_LIB_DIR);
  const createdLib = !existsSync(libDir);
  let backup: string | undefined;
  if (existsSync(HOOK_CONFIG)) {
    backup = `${HOOK_CONFIG}.${process.pid}.bak`;
    await rename(HOOK_CONFIG, backup);
  }
  await execa(process.execPath, [CLI, 'hook', 'install', ...(qemuD ? ['--qemu-d'] : [])]);
  await writeFile(HOOK_CONFIG, JSON.stringify(config), { mode: 0o600 });
  if (extra.length > 0) await mkdir(join(HOOKS, 'qemu.d'), { recursive: true });
  for (const [name, text] of extra) await writeFile(join(HOOKS, 'qemu.d', name), text, { mode: 0o755 });
  await restartLibvirtd();
  return {
    async restore() {
      for (const hook of qemuD ? ['qemu.d/ticrypt-net', 'network.d/ticrypt-net'] : ['qemu', 'network']) {
        await unlink(join(HOOKS, hook)).catch(() => {});
      }
      for (const [name] of extra) await unlink(join(HOOKS, 'qemu.d', name)).catch(() => {});
      await unlink(HOOK_CONFIG).catch(() => {});
      if (backup) await rename(backup, HOOK_CONFIG).catch(() => {});
      // Deepest first: network.d and qemu.d before hooks/.
      for (const dir of [...createdDirs].sort((a, b) => b.length - a.length)) await rmdir(dir).catch(() => {});
      if (createdLib) await rm(libDir, { recursive: true, force: true });
      // libvirtd forgets hooks only when it restarts; leave it as it was found.
      if (libvirtdWasRunning) await restartLibvirtd().catch(() => {});
      else {
        const pid = await pidOf('libvirtd');
        if (pid !== undefined) await endPid(pid, 10_000);
      }
    },
  };
}
