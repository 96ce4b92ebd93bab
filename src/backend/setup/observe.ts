/**
 * Gathering the backend machine's state: its links (with `ip -d`), the
 * sysctls the gateway needs, the boot-time settings file, NetworkManager and
 * the systemd unit. The only side-effecting half of planning; everything it
 * returns is plain data. Programs run in the backend's namespace when one is
 * given; files and systemd are the machine's.
 *
 * May not: change anything (`./execute.ts` does).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIpAddr } from '../../exec/ip-json.js';
import { programRunner, runChecked, type ProgramRunner } from '../../exec/run.js';
import type { Site } from '../../site/model.js';
import { GATEWAY_SETTING_KEYS, interfaceKey, interfaceSettings, IP_FORWARD, sysctlPath } from '../sysctls.js';
import type { BackendPlanOptions, ObservedBackend, ObservedUnit } from './model.js';
import { BACKEND_UNIT, SYSCTL_FILE, UNIT_FILE } from './plan.js';

/** Where and how to observe. */
export interface BackendObserveOptions extends Pick<BackendPlanOptions, 'root' | 'netns' | 'noService'> {
  /** Runs ip, grep, nmcli and systemctl (default: the real ones, in `netns` when given). */
  readonly run?: ProgramRunner;
}

/**
 * Observe the backend: links, sysctls, the boot-time file, NetworkManager (not
 * in a namespace: it manages the machine's links), systemd and the unit.
 *
 * @throws {IpError} `E_HOST_COMMAND` when `ip` fails.
 */
export async function observeBackend(site: Site, options: BackendObserveOptions = {}): Promise<ObservedBackend> {
  const run = options.run ?? programRunner(options.netns === undefined ? {} : { netns: options.netns });
  const root = options.root ?? '/';
  const links = parseIpAddr(await runChecked(run, 'listing interfaces', 'ip', ['-d', '-j', 'addr', 'show']));
  const keys = [
    IP_FORWARD.key,
    ...GATEWAY_SETTING_KEYS.map((key) => interfaceKey('all', key)),
    ...interfaceSettings(site).map((s) => interfaceKey(s.iface, s.key)),
  ];
  // One grep for every file: "path:value" lines; a missing interface's files are simply absent (-s).
  const read = await run('grep', ['-H', '-s', '.', ...keys.map(sysctlPath)]);
  const sysctls = parseSysctlLines(read.stdout);
  const sysctlFile = await readFile(join(root, SYSCTL_FILE), 'utf8').catch(() => undefined);
  const machine = options.netns === undefined;
  const nm = machine ? await run('nmcli', ['-t', '-f', 'RUNNING', 'general']).catch(() => undefined) : undefined;
  const systemd = existsSync('/run/systemd/system');
  const unit = machine && options.noService !== true && systemd ? await observeUnit(run, root) : undefined;
  return {
    links,
    sysctls,
    ...(sysctlFile === undefined ? {} : { sysctlFile }),
    networkManager: nm?.exitCode === 0 && nm.stdout.trim() === 'running',
    systemd,
    ...(unit === undefined ? {} : { unit }),
  };
}

/** `grep -H . /proc/sys/...` lines (`/proc/sys/net/ipv4/ip_forward:1`) as `{ 'net/ipv4/ip_forward': 1 }`. */
export function parseSysctlLines(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^\/proc\/sys\/(.+):(-?\d+)$/.exec(line.trim());
    if (match !== null) out[match[1] as string] = Number(match[2]);
  }
  return out;
}

async function observeUnit(run: ProgramRunner, root: string): Promise<ObservedUnit> {
  const text = await readFile(join(root, UNIT_FILE), 'utf8').catch(() => undefined);
  const enabled = await run('systemctl', ['is-enabled', BACKEND_UNIT]);
  return { ...(text === undefined ? {} : { text }), enabled: enabled.stdout.trim() === 'enabled' };
}
