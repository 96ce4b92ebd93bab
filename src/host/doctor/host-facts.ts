/** Facts a host's doctor checks judge, and the gatherer that collects them on the host. */
import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BackendClient } from '../../backend/api/client.js';
import { API_PATHS } from '../../protocol/api.js';
import type { Site } from '../../site/model.js';
import type { ObservedHost } from '../model.js';
import { observeHost, parseIpAddr } from '../observe.js';
import type { FlowSource } from '../flows/observe.js';
import { programRunner, type ProgramRunner } from '../../exec/run.js';
import { parseRoutes, type RouteFact } from './route-facts.js';
import { DEFAULT_HOOK_CONFIG, HOOK_DROP_IN_NAME, HOOK_LIB_DIR, LIBVIRT_HOOKS_DIR } from '../../names.js';

/** One hook file libvirt may run. */
export interface HookFileFact {
  readonly path: string;
  readonly exists: boolean;
  readonly executable: boolean;
  /** The `#!` line's program and its first argument (`/usr/bin/env node`), when it has one. */
  readonly interpreter?: readonly string[];
  readonly mtimeMs?: number;
  /** A ticrypt-net hook's parts, as its `TICRYPT_NET_NODE` and `TICRYPT_NET_HOOK` lines name them (placeholders: the defaults the hook uses). */
  readonly parts?: readonly HookPartFact[];
}

/** One file a hook needs to run: node, or the bundle. */
export interface HookPartFact {
  readonly name: 'node' | 'bundle';
  readonly path: string;
  /** node executable, the bundle readable. */
  readonly present: boolean;
}

/** The hook configuration, read minimally. */
export interface HookConfigFact {
  readonly path: string;
  readonly exists: boolean;
  readonly url?: string;
  readonly tokenFile?: string;
  /** Why it could not be read or parsed. */
  readonly error?: string;
}

/** What calling the backend with this host's token gave. */
export interface BackendReachFact {
  readonly url: string;
  readonly ok: boolean;
  /** `unreachable`, `refused` (token or request), or `ok`. */
  readonly outcome: 'ok' | 'unreachable' | 'refused' | 'no-token';
  readonly message: string;
}

/** Everything the host checks look at. */
export interface HostFacts {
  readonly observed: ObservedHost;
  /** `/etc/libvirt/hooks/qemu` and `/etc/libvirt/hooks/qemu.d/ticrypt-net`. */
  readonly hooks: readonly HookFileFact[];
  /** When libvirtd started (epoch ms); absent when it is not running. */
  readonly libvirtdStartMs?: number;
  readonly hookConfig: HookConfigFact;
  /** Absent when there is no usable hook config to call with. */
  readonly backend?: BackendReachFact;
  readonly routes: readonly RouteFact[];
}

/** Where the host gatherer looks. */
export interface HostGatherOptions {
  readonly run?: ProgramRunner;
  readonly virshUri?: string;
  /** Default `/etc/libvirt/hooks`. */
  readonly hooksDir?: string;
  /** Default `/etc/ticrypt-net/hook.yaml`. */
  readonly hookConfigFile?: string;
  /** Default: libvirtd's pid found in /proc by its name. */
  readonly libvirtdPid?: number;
  /** Port security's flows are checked with the backend's view from here (absent: not checked). */
  readonly flows?: FlowSource;
}

/** Gather the host facts (never throws for a missing piece: that is what the checks report). */
export async function gatherHostFacts(site: Site, options: HostGatherOptions = {}): Promise<HostFacts> {
  const run = options.run ?? programRunner();
  const hooksDir = options.hooksDir ?? LIBVIRT_HOOKS_DIR;
  const observed = await observeHost(site, {
    run,
    ...(options.virshUri === undefined ? {} : { virshUri: options.virshUri }),
    ...(options.flows === undefined ? {} : { flows: options.flows }),
  }).catch(async () => ({
    ovsRunning: false,
    bridges: [],
    ports: [],
    links: parseIpAddr((await run('ip', ['-j', 'addr', 'show'])).stdout),
    networks: [],
    networkManager: false,
  }));
  const hooks = await Promise.all(
    [join(hooksDir, 'qemu'), join(hooksDir, 'qemu.d', HOOK_DROP_IN_NAME)].map(hookFileFact),
  );
  const pid = options.libvirtdPid ?? (await findPid('libvirtd'));
  const libvirtdStartMs = pid === undefined ? undefined : await processStartMs(pid);
  const hookConfig = await readHookConfig(options.hookConfigFile ?? DEFAULT_HOOK_CONFIG);
  const backend = await reachBackend(hookConfig);
  const routes = parseRoutes((await run('ip', ['-j', 'route', 'show'])).stdout);
  return {
    observed,
    hooks,
    ...(libvirtdStartMs === undefined ? {} : { libvirtdStartMs }),
    hookConfig,
    ...(backend === undefined ? {} : { backend }),
    routes,
  };
}

/** Existence, mode, `#!` line and mtime of a hook file. */
export async function hookFileFact(path: string): Promise<HookFileFact> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile()) return { path, exists: false, executable: false };
  const text = (await readFile(path).catch(() => Buffer.alloc(0))).subarray(0, 64 * 1024).toString('utf8');
  const shebang = text.startsWith('#!') ? text.slice(2).split('\n')[0]?.trim().split(/\s+/) : undefined;
  const parts = await hookParts(text);
  return {
    path,
    exists: true,
    executable: (info.mode & 0o111) !== 0,
    ...(shebang === undefined ? {} : { interpreter: shebang }),
    mtimeMs: info.mtimeMs,
    ...(parts === undefined ? {} : { parts }),
  };
}

/** The node and bundle a ticrypt-net hook script names (undefined for another script). */
async function hookParts(text: string): Promise<HookPartFact[] | undefined> {
  const value = (name: string) => new RegExp(`^${name}='([^'\n]*)'$`, 'm').exec(text)?.[1];
  const node = value('TICRYPT_NET_NODE');
  const bundle = value('TICRYPT_NET_HOOK');
  if (node === undefined || bundle === undefined) return undefined;
  const unfilled = (v: string) => /^@.*@$/.test(v);
  const paths = {
    node: unfilled(node) ? '/usr/bin/node' : node,
    bundle: unfilled(bundle) ? join(HOOK_LIB_DIR, 'hook.cjs') : bundle,
  };
  const can = (file: string, mode: number) =>
    access(file, mode).then(
      () => true,
      () => false,
    );
  return [
    { name: 'node', path: paths.node, present: await can(paths.node, fsConstants.X_OK) },
    { name: 'bundle', path: paths.bundle, present: await can(paths.bundle, fsConstants.R_OK) },
  ];
}

/** The pid of the oldest process named `name` (its /proc comm), if any. */
export async function findPid(name: string): Promise<number | undefined> {
  const { readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b)[0];
}

/** When a process started (epoch ms): /proc/PID/stat field 22 (clock ticks since boot) plus the boot time. */
export async function processStartMs(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  const procStat = await readFile('/proc/stat', 'utf8').catch(() => '');
  const btime = Number(/^btime (\d+)$/m.exec(procStat)?.[1]);
  if (text === undefined || !Number.isFinite(btime)) return undefined;
  // Fields after "(comm)": state is field 3, so starttime (22) is index 19.
  const ticks = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isFinite(ticks) ? btime * 1000 + (ticks / 100) * 1000 : undefined;
}

/** Read the hook config's backend URL and token file (`backendUrl` or `url`, `tokenFile`). */
export async function readHookConfig(path: string): Promise<HookConfigFact> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? { path, exists: false }
      : { path, exists: true, error: `unreadable (${code ?? String(error)})` };
  }
  try {
    const data = parseYaml(text) as Record<string, unknown> | null;
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const url =
      str(data?.backendUrl) ?? str(data?.url) ?? str((data?.backend as Record<string, unknown> | undefined)?.url);
    const tokenFile = str(data?.tokenFile) ?? str((data?.backend as Record<string, unknown> | undefined)?.tokenFile);
    return {
      path,
      exists: true,
      ...(url === undefined ? {} : { url }),
      ...(tokenFile === undefined ? {} : { tokenFile }),
    };
  } catch (error) {
    return { path, exists: true, error: `not YAML (${(error as Error).message.split('\n')[0] ?? ''})` };
  }
}

/** Call `GET /v1/registrations` with the host's token (bounded to 3 s). */
export async function reachBackend(config: HookConfigFact): Promise<BackendReachFact | undefined> {
  if (!config.exists || config.url === undefined) return undefined;
  const url = config.url;
  if (config.tokenFile === undefined)
    return { url, ok: false, outcome: 'no-token', message: 'the hook config names no tokenFile' };
  const token = (await readFile(config.tokenFile, 'utf8').catch(() => undefined))?.trim();
  if (token === undefined || token === '') {
    return { url, ok: false, outcome: 'no-token', message: `token file ${config.tokenFile} is missing or empty` };
  }
  try {
    await new BackendClient({ url, token, timeoutMs: 3000 }).call('GET', API_PATHS.registrations);
    return { url, ok: true, outcome: 'ok', message: 'GET /v1/registrations answered' };
  } catch (error) {
    const code = (error as { code?: string }).code;
    return {
      url,
      ok: false,
      outcome: code === 'E_BACKEND_REFUSED' ? 'refused' : 'unreachable',
      message: (error as Error).message,
    };
  }
}
