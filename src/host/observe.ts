/**
 * Gathering a host's state: what ovs-vsctl, ip and virsh report. The only
 * side-effecting half of planning; everything it returns is plain data.
 * May not: change anything on the host (`./execute.ts` does).
 */
import { parseIpAddr } from '../exec/ip-json.js';
import { programError } from '../exec/program-errors.js';
import { DEFAULT_LIBVIRT_URI } from '../names.js';
import type { Site } from '../site/model.js';
import type { ObservedBridge, ObservedHost, ObservedNetwork, ObservedPort } from './model.js';
import { observeFlows, type FlowSource } from './flows/observe.js';
import { OVS_COLUMNS, parseOvsState } from './ovs-json.js';

export { parseOvsState };
import { programRunner, runChecked, type ProgramRunner } from '../exec/run.js';

/** Where and how to observe. */
export interface ObserveOptions {
  readonly run?: ProgramRunner;
  /** libvirt connection URI (default `qemu:///system`). */
  readonly virshUri?: string;
  /** Also observe port security's flows, with the backend's view from here (hook.yaml's backend). */
  readonly flows?: FlowSource;
}

/**
 * Observe the host: OVS bridges and ports, kernel interfaces, and the libvirt
 * networks the site names (no other network is looked at).
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` (`IpError`, `VirshError`, `OvsVsctlError`) when ip, virsh or ovs-vsctl fail for another reason than a missing network.
 */
export async function observeHost(site: Site, options: ObserveOptions = {}): Promise<ObservedHost> {
  const run = options.run ?? programRunner();
  const uri = options.virshUri ?? DEFAULT_LIBVIRT_URI;
  const ovs = await observeOvs(run);
  const links = parseIpAddr(await runChecked(run, 'listing interfaces', 'ip', ['-j', 'addr', 'show']));
  const networks: ObservedNetwork[] = [];
  for (const network of site.networks) {
    const found = await observeNetwork(run, uri, network.name);
    if (found) networks.push(found);
  }
  const nm = await run('nmcli', ['-t', '-f', 'RUNNING', 'general']).catch(() => undefined);
  const flows =
    options.flows !== undefined && ovs.ovsRunning ? await observeFlows(run, ovs.bridges, options.flows) : undefined;
  return {
    ...ovs,
    links,
    networks,
    networkManager: nm?.exitCode === 0 && nm.stdout.trim() === 'running',
    ...(flows === undefined ? {} : { flows }),
  };
}

/** OVS bridges and ports (`ovsRunning: false` when ovsdb-server does not answer). */
export async function observeOvs(
  run: ProgramRunner,
): Promise<{ ovsRunning: boolean; bridges: ObservedBridge[]; ports: ObservedPort[] }> {
  const list = (table: string, columns: string) =>
    run('ovs-vsctl', ['--timeout=5', '--format=json', `--columns=${columns}`, 'list', table]);
  const bridgeResult = await list('Bridge', OVS_COLUMNS.Bridge);
  if (bridgeResult.exitCode !== 0) return { ovsRunning: false, bridges: [], ports: [] };
  const portResult = await list('Port', OVS_COLUMNS.Port);
  const ifaceResult = await list('Interface', OVS_COLUMNS.Interface);
  for (const [result, table] of [
    [portResult, 'Port'],
    [ifaceResult, 'Interface'],
  ] as const) {
    if (result.exitCode !== 0) throw programError(result, `listing OVS table ${table}`);
  }
  return parseOvsState(bridgeResult.stdout, portResult.stdout, ifaceResult.stdout);
}

/** Interfaces from `ip -j addr show` (`../exec/ip-json.ts`; re-exported for the host's callers). */
export { parseIpAddr };

/** One libvirt network (`undefined` when virsh does not know it). */
export async function observeNetwork(
  run: ProgramRunner,
  uri: string,
  name: string,
): Promise<ObservedNetwork | undefined> {
  const info = await run('virsh', ['-q', '-c', uri, 'net-info', name]);
  if (info.exitCode !== 0) {
    if (/no network with matching name|Network not found/i.test(info.stderr)) return undefined;
    throw programError(info, `reading network ${name}`);
  }
  const field = (key: string) => new RegExp(`^${key}:\\s*(\\S+)`, 'm').exec(info.stdout)?.[1];
  const active = field('Active') === 'yes';
  const xml = await runChecked(run, `reading network ${name}`, 'virsh', ['-c', uri, 'net-dumpxml', '--inactive', name]);
  const live = active
    ? await runChecked(run, `reading network ${name}`, 'virsh', ['-c', uri, 'net-dumpxml', name])
    : '';
  return {
    name,
    active,
    autostart: field('Autostart') === 'yes',
    persistent: field('Persistent') === 'yes',
    xml,
    connections: networkConnections(live),
  };
}

/** The `connections='N'` of a live network XML's root element (0 when absent). */
export function networkConnections(liveXml: string): number {
  const root = /<network\b[^>]*>/.exec(liveXml)?.[0] ?? '';
  const count = /\bconnections=['"](\d+)['"]/.exec(root)?.[1];
  return count === undefined ? 0 : Number(count);
}
