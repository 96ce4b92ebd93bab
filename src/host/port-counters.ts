/**
 * Each VM port's traffic counters on this host, for `doctor --role host
 * --json`: one `ovs-vsctl --format=json list Interface` (the `statistics`
 * and `external_ids` columns of every interface, read from ovsdb), never a
 * call per port. A VM port is an interface libvirt tagged with
 * `external_ids:attached-mac` (and `vm-id`, `iface-id`). May not: change OVS.
 */
import { runChecked, type ProgramRunner } from '../exec/run.js';
import { ovsMap, parseOvsTable } from './ovs-json.js';

/** One direction of a port's counters, as OVS counts them (rx: from the VM into the bridge). */
export interface PortDirection {
  readonly packets: number;
  readonly bytes: number;
  readonly dropped: number;
  readonly errors: number;
}

/** A VM port's identity and counters. */
export interface VmPortCounters {
  /** The OVS interface (libvirt's `vnetN`). */
  readonly port: string;
  readonly mac: string;
  /** The VM's UUID (`external_ids:vm-id`), when libvirt set it. */
  readonly vmUuid?: string;
  /** libvirt's interface id (`external_ids:iface-id`). */
  readonly ifaceId?: string;
  readonly rx: PortDirection;
  readonly tx: PortDirection;
}

/** `ovs-vsctl` arguments reading every interface's name, external ids and statistics in one call. */
export function portCountersArgs(timeoutMs = 10_000): string[] {
  return [
    `--timeout=${Math.max(1, Math.ceil(timeoutMs / 1000))}`,
    '--format=json',
    '--columns=name,external_ids,statistics',
    'list',
    'Interface',
  ];
}

function direction(stats: Record<string, string>, side: 'rx' | 'tx'): PortDirection {
  const n = (key: string) => {
    const value = Number(stats[`${side}_${key}`] ?? 0);
    return Number.isFinite(value) ? value : 0;
  };
  return { packets: n('packets'), bytes: n('bytes'), dropped: n('dropped'), errors: n('errors') };
}

/**
 * The VM ports in {@link portCountersArgs}' output, by port name.
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when it is not ovs-vsctl's JSON table.
 */
export function parseVmPortCounters(stdout: string): VmPortCounters[] {
  const rows = parseOvsTable(stdout);
  const ports: VmPortCounters[] = [];
  for (const row of rows) {
    const ids = ovsMap(row.external_ids);
    const mac = ids['attached-mac'];
    if (typeof row.name !== 'string' || mac === undefined) continue;
    const stats = ovsMap(row.statistics);
    ports.push({
      port: row.name,
      mac: mac.toLowerCase(),
      ...(ids['vm-id'] === undefined ? {} : { vmUuid: ids['vm-id'] }),
      ...(ids['iface-id'] === undefined ? {} : { ifaceId: ids['iface-id'] }),
      rx: direction(stats, 'rx'),
      tx: direction(stats, 'tx'),
    });
  }
  return ports.sort((a, b) => a.port.localeCompare(b.port));
}

/**
 * Read every VM port's counters with one `ovs-vsctl` call.
 *
 * @throws {OvsVsctlError} when ovs-vsctl fails (OVS not running).
 */
export async function readVmPortCounters(run: ProgramRunner): Promise<VmPortCounters[]> {
  return parseVmPortCounters(await runChecked(run, 'to read the VM ports counters', 'ovs-vsctl', portCountersArgs()));
}
