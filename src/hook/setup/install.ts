/**
 * `hook install`: copy the hook's bundle to a stable path of its own
 * (`/usr/local/lib/ticrypt-net/hook/`), put the qemu and network hook
 * executables in libvirt's hook directory (with their paths filled in) and a
 * config template beside them. Runs when an operator installs, never inside a
 * hook call. May not: overwrite a hook that is not ticrypt-net's.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { HookInstallError } from '../../errors/hook-install-error.js';
import { packageRoot } from '../../package-files.js';
import { hookConfigTemplate } from './config.js';
import {
  DEFAULT_HOOK_CACHE,
  DEFAULT_HOOK_CONFIG,
  HOOK_DROP_IN_NAME,
  HOOK_LIB_DIR,
  LIBVIRT_HOOKS_DIR,
} from '../../names.js';

/** Where AppArmor's libvirtd profile lets a hook exec programs from. */
const APPARMOR_EXEC_DIRS = ['/bin/', '/sbin/', '/usr/bin/', '/usr/sbin/'];
/** Marks the hooks as ours, so install may replace them and never anything else. */
const MARKER = /^# ticrypt-net (qemu|network) hook/m;

/** Options of {@link installHooks}. */
export interface InstallOptions {
  /** Install under this root instead of `/` (tests, images). */
  readonly root?: string;
  /** Install as `qemu.d/ticrypt-net` and `network.d/ticrypt-net` (libvirt >= 6.5), beside other hooks. */
  readonly qemuD?: boolean;
  /** The node binary the hooks run (default: /usr/bin/node, else /usr/local/bin/node, else this one). */
  readonly node?: string;
  /** The package directory holding `hooks/` and `dist/hook/` (default: this package). */
  readonly packageDir?: string;
}

/** What {@link installHooks} did, and what the operator must do next. */
export interface InstallReport {
  /** Files written (new, or different from what was there). */
  readonly written: readonly string[];
  /** The config, kept because it exists. */
  readonly kept: readonly string[];
  /** Hook and bundle files already as they would be written: left untouched (their mtime too, so libvirtd needs no restart). */
  readonly unchanged: readonly string[];
  readonly node: string;
  readonly config: string;
  /** Things to do or check, one line each (restart libvirtd, AppArmor). */
  readonly notes: readonly string[];
}

/** The files of the hook's bundle, as `npm run build` makes them in `dist/hook/`. */
const BUNDLE_FILES = ['hook.cjs', 'hook-config.cjs'] as const;

/**
 * Install the hook's bundle (copied to `HOOK_LIB_DIR`, replacing an older
 * copy file by file, each renamed into place), the qemu and network hooks
 * (from `hooks/`, with the node, bundle, config and cache paths filled in)
 * and, if there is none, a commented config template. Refuses to overwrite a
 * hook that is not ticrypt-net's.
 *
 * @throws {HookInstallError} `E_HOOK_INSTALL` on a foreign hook, a missing bundle, or a write failure.
 * @example installHooks({ qemuD: true }).notes // ['restart libvirtd ...']
 */
export function installHooks(options: InstallOptions = {}): InstallReport {
  const root = resolve(options.root ?? '/');
  const under = (path: string) => join(root, path);
  const packageDir = options.packageDir ?? packageRoot();
  for (const file of BUNDLE_FILES) {
    const built = join(packageDir, 'dist', 'hook', file);
    if (!existsSync(built)) {
      throw new HookInstallError(built, `Hook bundle ${built} is missing: build the package first (npm run build)`);
    }
  }
  const node = options.node ?? findNode();
  const notes: string[] = [];
  if (!APPARMOR_EXEC_DIRS.some((dir) => node.startsWith(dir))) {
    notes.push(
      `node is ${node}: under AppArmor, libvirtd may exec hooks' interpreters only from /bin, /sbin, /usr/bin or /usr/sbin; install Node there (e.g. the distribution's or NodeSource's package) or pass --node`,
    );
  }
  const config = under(DEFAULT_HOOK_CONFIG);
  const libDir = under(HOOK_LIB_DIR);
  const paths = { NODE: node, HOOK: join(libDir, 'hook.cjs'), CONFIG: config, CACHE: under(DEFAULT_HOOK_CACHE) };
  for (const [key, value] of Object.entries(paths)) {
    if (value.includes("'") || value.includes('\n')) {
      throw new HookInstallError(
        value,
        `Cannot install: the ${key.toLowerCase()} path ${value} contains a quote or newline`,
      );
    }
  }
  const hooksDir = under(LIBVIRT_HOOKS_DIR);
  const written: string[] = [];
  const kept: string[] = [];
  const unchanged: string[] = [];
  const hooks: string[] = [];
  const install = (target: string, text: string, mode: number) => {
    if (sameFile(target, text, mode)) unchanged.push(target);
    else {
      writeAtomic(target, text, mode);
      written.push(target);
    }
  };
  // The configuration validator first: a hook.cjs that finds it has the one of its own build.
  for (const file of [...BUNDLE_FILES].reverse()) {
    const target = join(libDir, file);
    install(target, readFileSync(join(packageDir, 'dist', 'hook', file), 'utf8'), 0o644);
  }
  for (const kind of ['qemu', 'network'] as const) {
    const target = options.qemuD ? join(hooksDir, `${kind}.d`, HOOK_DROP_IN_NAME) : join(hooksDir, kind);
    if (existsSync(target) && !MARKER.test(readFileSync(target, 'utf8'))) {
      throw new HookInstallError(
        target,
        `${target} exists and is not ticrypt-net's hook: refusing to overwrite it. Install beside it with --qemu-d (as ${kind}.d/ticrypt-net; libvirt >= 6.5 runs every executable there after ${kind})`,
      );
    }
    let text = readFileSync(join(packageDir, 'hooks', kind), 'utf8');
    for (const [key, value] of Object.entries(paths)) text = text.replaceAll(`@${key}@`, value);
    install(target, text, 0o755);
    hooks.push(target);
  }
  if (existsSync(config)) kept.push(config);
  else {
    writeAtomic(config, hookConfigTemplate(), 0o600);
    written.push(config);
    notes.push(
      `edit ${config} (hostId, backend.url, caFile, tokenFile, networks), then check it: ticrypt-net hook check`,
    );
  }
  // libvirtd finds hook files only when it starts; the bundle is read at every run.
  if (hooks.some((path) => written.includes(path))) {
    notes.push(
      'restart libvirtd (systemctl restart libvirtd, or virtqemud and virtnetworkd) so it discovers the hooks: libvirt reads them only when it starts',
    );
  }
  notes.push('enable the flush and reconcile timer: systemctl enable --now ticrypt-net-host-sync.timer');
  notes.push(
    "enable port security's flow sync at each Open vSwitch start and the hot-plug pin: systemctl enable ticrypt-net-host-flows.service ticrypt-net-host-pin.path",
  );
  return { written, kept, unchanged, node, config, notes };
}

/** The node binary to bake into the hooks: one AppArmor allows, when there is one. */
export function findNode(): string {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) if (existsSync(candidate)) return candidate;
  return process.execPath;
}

/** Whether `path` is a file with exactly this text and permission bits. */
function sameFile(path: string, text: string, mode: number): boolean {
  try {
    return (statSync(path).mode & 0o7777) === mode && readFileSync(path, 'utf8') === text;
  } catch {
    return false;
  }
}

function writeAtomic(path: string, text: string, mode: number): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, path);
  } catch (error) {
    throw new HookInstallError(path, `Cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}
