/**
 * What a bridge's flows should be, from what OVS shows (its policy, ports,
 * OpenFlow port numbers, VLAN tags, which ports are VMs') and what the backend
 * says (each VM's address, the gateway's MAC, the groups). Pure. Used by the
 * hook (for its own NICs) and the host sync (for every port), so both render
 * the same inputs into the same programs. May not: observe or change anything.
 */
import type { ObservedBridge, ObservedPort } from '../host/model.js';
import { isUnicastMac, normalizeMac } from '../site/mac.js';
import type { BridgePolicy } from './policy.js';
import {
  renderBridgeProgram,
  renderGroupProgram,
  renderPortProgram,
  type FlowProgram,
  type GroupMemberSpec,
  type PortSpec,
  type UplinkSpec,
} from './render.js';

/** A group as the backend reports it for one network. */
export interface GroupView {
  readonly id: number;
  readonly name?: string;
  readonly members: readonly { readonly mac: string; readonly ip?: string }[];
}

/** What the backend says about one network. */
export interface NetworkView {
  /** The gateway's MAC (absent: unknown; `gateway` and `groups` VMs then cannot unicast to it). */
  readonly gatewayMac?: string;
  /** Each registered VM NIC's address on the network, by MAC. */
  readonly ips: ReadonlyMap<string, string>;
  /** Groups with a member on this host (`groups` networks). */
  readonly groups: readonly GroupView[];
}

/** A VM port: an interface libvirt created, with the VM's MAC in `external_ids:attached-mac`. */
export interface VmPort {
  readonly name: string;
  readonly ofport: number;
  readonly mac: string;
  readonly tag: number;
  /** The domain's UUID (`external_ids:vm-id`), when libvirt set it. */
  readonly vmUuid?: string;
}

/** One program a bridge should hold, with words for it. */
export interface DesiredProgram {
  /** `bridge`, `group 5 (lab)`, `port vnet3 (ofport 7, 52:54:00:12:34:56)`. */
  readonly label: string;
  readonly program: FlowProgram;
}

/** Everything a bridge should hold of ours. */
export interface BridgeIntent {
  readonly bridge: string;
  readonly network: string;
  /** The bridge's program first, then groups', then ports'. */
  readonly programs: readonly DesiredProgram[];
}

/** The VM ports of a bridge (with an OpenFlow port number and a valid `attached-mac`), by ofport. */
export function vmPorts(bridge: string, ports: readonly ObservedPort[]): VmPort[] {
  const found: VmPort[] = [];
  for (const port of ports) {
    const mac = port.interfaceExternalIds['attached-mac'];
    if (port.bridge !== bridge || port.ofport === undefined || mac === undefined || !isUnicastMac(mac)) continue;
    const vmUuid = port.interfaceExternalIds['vm-id'];
    found.push({
      name: port.name,
      ofport: port.ofport,
      mac: normalizeMac(mac),
      tag: port.tag ?? 0,
      ...(vmUuid === undefined ? {} : { vmUuid: vmUuid.toLowerCase() }),
    });
  }
  return found.sort((a, b) => a.ofport - b.ofport);
}

/** The uplink of a bridge per its policy: its OpenFlow port, and whether it is a trunk (tagged frames). */
export function uplinkOf(policy: BridgePolicy, ports: readonly ObservedPort[]): UplinkSpec | undefined {
  const port = ports.find((p) => p.name === policy.uplink);
  if (port?.ofport === undefined) return undefined;
  return { ofport: port.ofport, tagged: port.trunks.length > 0 };
}

/** The bridge program of a bridge (its non-VM ports pass by NORMAL; not the bridge's own internal port). */
export function bridgeProgramOf(
  bridge: ObservedBridge,
  policy: BridgePolicy,
  ports: readonly ObservedPort[],
  gatewayMac: string | undefined,
): FlowProgram {
  const mine = ports.filter((p) => p.bridge === bridge.name);
  const passPorts = mine
    .filter(
      (p) => p.ofport !== undefined && p.name !== bridge.name && p.interfaceExternalIds['attached-mac'] === undefined,
    )
    .map((p) => p.ofport as number);
  const uplink = uplinkOf(policy, mine);
  return renderBridgeProgram({
    peers: policy.peers,
    passPorts,
    ...(gatewayMac === undefined ? {} : { gatewayMac }),
    ...(uplink === undefined ? {} : { uplink }),
  });
}

/** The spec of one VM port's program. */
export function portSpecOf(
  policy: BridgePolicy,
  port: VmPort,
  context: {
    readonly uplink: UplinkSpec | undefined;
    readonly ip: string | undefined;
    readonly gatewayMac: string | undefined;
    readonly group?: { readonly id: number; readonly members: readonly GroupMemberSpec[] };
  },
): PortSpec {
  return {
    ofport: port.ofport,
    mac: port.mac,
    tag: port.tag,
    peers: policy.peers,
    ipv6: policy.ipv6,
    gatewayIp: policy.gateway,
    ...(context.ip === undefined ? {} : { ip: context.ip }),
    ...(context.gatewayMac === undefined ? {} : { gatewayMac: context.gatewayMac }),
    ...(context.uplink === undefined ? {} : { uplink: context.uplink }),
    ...(context.group === undefined || policy.peers !== 'groups' ? {} : { group: context.group }),
  };
}

/** Words for a port's program. */
export function portLabel(port: Pick<VmPort, 'name' | 'ofport' | 'mac'>): string {
  return `port ${port.name} (ofport ${port.ofport}, ${port.mac})`;
}

/**
 * Every program a bridge with port security should hold: the bridge's, one
 * per group with a member here (`groups`), one per VM port.
 *
 * @throws {FlowInputError} `E_FLOW_INPUT` when a value from OVS or the backend cannot be written into a flow.
 */
export function bridgeIntent(
  bridge: ObservedBridge,
  policy: BridgePolicy,
  ports: readonly ObservedPort[],
  view: NetworkView,
): BridgeIntent {
  const mine = ports.filter((p) => p.bridge === bridge.name);
  const vms = vmPorts(bridge.name, mine);
  const uplink = uplinkOf(policy, mine);
  const local = new Map(vms.map((p) => [p.mac, p]));
  const programs: DesiredProgram[] = [
    { label: 'bridge', program: bridgeProgramOf(bridge, policy, mine, view.gatewayMac) },
  ];
  const groups = policy.peers === 'groups' ? view.groups : [];
  const groupOf = new Map<string, GroupView>();
  for (const group of [...groups].sort((a, b) => a.id - b.id)) {
    const members = group.members.map((m) => normalizeMac(m.mac));
    if (!members.some((mac) => local.has(mac))) continue;
    for (const mac of members) if (!groupOf.has(mac)) groupOf.set(mac, group);
    programs.push({
      label: `group ${group.id}${group.name === undefined ? '' : ` (${group.name})`}`,
      program: renderGroupProgram({ id: group.id, remoteMacs: members.filter((mac) => !local.has(mac)) }),
    });
  }
  for (const port of vms) {
    const group = groupOf.get(port.mac);
    const spec = portSpecOf(policy, port, {
      uplink,
      ip: view.ips.get(port.mac),
      gatewayMac: view.gatewayMac,
      ...(group === undefined
        ? {}
        : {
            group: {
              id: group.id,
              members: group.members.map((m): GroupMemberSpec => {
                const mac = normalizeMac(m.mac);
                const here = local.get(mac);
                return {
                  mac,
                  ...(m.ip === undefined ? {} : { ip: m.ip }),
                  ...(here === undefined ? {} : { local: { ofport: here.ofport, tag: here.tag } }),
                };
              }),
            },
          }),
    });
    programs.push({ label: portLabel(port), program: renderPortProgram(spec) });
  }
  return { bridge: bridge.name, network: policy.network, programs };
}
