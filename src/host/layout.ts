import { UsageError } from '../errors/usage-error.js';
import type { Network, Site } from '../site/model.js';
import { DEFAULT_UPLINK_BRIDGE, type PlanOptions } from './model.js';
import type { BridgePolicy } from '../portsec/policy.js';

/** A VLAN sub-interface a vlan-mode network needs on this host. */
export interface VlanInterface {
  readonly interface: string;
  readonly parent: string;
  readonly vlan: number;
  /** The network it carries. */
  readonly network: string;
  /** The network's MTU, when the site sets one: the interface and its parent need at least this. */
  readonly mtu?: number;
}

/** A port ticrypt-net puts on a bridge (marked managed). */
export interface DesiredPort {
  readonly bridge: string;
  readonly port: string;
  readonly tag?: number;
  /** Sorted trunk VLANs (empty for an access port). */
  readonly trunks: readonly number[];
  readonly peer?: string;
  /** `uplink`: a kernel interface that must exist; `patch`: created with its peer. */
  readonly role: 'uplink' | 'patch';
}

/** What the site wants on one host, before looking at the host. */
export interface HostLayout {
  readonly host: string;
  readonly vlanInterfaces: readonly VlanInterface[];
  /** Kernel interfaces that must exist and be up, carrying tagged frames (trunk-mode parents). */
  readonly trunkParents: readonly string[];
  /** The least MTU each uplink interface (VLAN interface, its parent, trunk parent) needs: the largest MTU the site sets for a network it carries. */
  readonly minMtu: Readonly<Record<string, number>>;
  /** Bridges the site manages: each network's, plus the shared uplink bridge when a network is in trunk mode. */
  readonly bridges: readonly string[];
  readonly ports: readonly DesiredPort[];
  readonly networks: readonly Network[];
  /** Each network bridge's port-security policy (written into its external_ids, with fail_mode=secure). */
  readonly policies: readonly { readonly bridge: string; readonly policy: BridgePolicy }[];
}

/** Every VLAN a network's bridge carries: its own and its portgroups', sorted. */
export function networkVlans(network: Network): number[] {
  return [...new Set([network.vlan, ...network.portgroups.map((g) => g.vlan)])].sort((a, b) => a - b);
}

/** The patch port on a trunk-mode network's bridge (its peer is {@link uplinkPatchPort}). */
export function bridgePatchPort(network: Network): string {
  return `${network.bridge}-up`;
}

/** The patch port on the shared uplink bridge that leads to a network's bridge. */
export function uplinkPatchPort(network: Network): string {
  return `${network.bridge}-dn`;
}

/**
 * The network's uplink as it is on `host`: a host's `uplink` replaces every
 * network's parent, and a vlan-mode interface derived from the parent
 * (`bond0.1081`) follows it (`eno1.1081`).
 */
export function hostUplink(site: Site, host: string | undefined, network: Network): Network['uplink'] {
  const override = host === undefined ? undefined : site.hosts.find((h) => h.name === host)?.uplink;
  const { parent, mode, interface: iface } = network.uplink;
  if (override === undefined || override === parent) return network.uplink;
  if (mode === 'trunk') return { parent: override, mode, interface: override };
  const derived = iface === `${parent}.${network.vlan}` ? `${override}.${network.vlan}` : iface;
  return { parent: override, mode, interface: derived };
}

/**
 * What the site wants on `host` (its uplink override applied).
 *
 * Design: in `vlan` mode each network bridge holds its VLAN sub-interface as
 * an access port tagged with the network's VLAN, so libvirt's tagged VM ports
 * and the uplink agree and frames leave untagged on the sub-interface (the
 * kernel tags them). In `trunk` mode the parent (a port may sit on one bridge
 * only) joins one shared uplink bridge as a trunk of every trunk-mode VLAN,
 * and each network bridge reaches it through a patch-port pair; both patch
 * ends are trunks of the network's VLANs (its own and its portgroups'), so
 * frames keep their 802.1Q tag across the patch and no re-tagging happens.
 *
 * @throws {UsageError} `E_USAGE` when the host is not one of the site's hosts (and the site lists hosts).
 */
export function hostLayout(site: Site, host: string | undefined, options: PlanOptions = {}): HostLayout {
  if (host !== undefined && site.hosts.length > 0 && !site.hosts.some((h) => h.name === host)) {
    throw new UsageError(
      `Unknown host ${JSON.stringify(host)}: expected one of ${site.hosts.map((h) => h.name).join(', ')}`,
    );
  }
  const uplinkBridge = options.uplinkBridge ?? DEFAULT_UPLINK_BRIDGE;
  const vlanInterfaces: VlanInterface[] = [];
  const ports: DesiredPort[] = [];
  const bridges: string[] = [];
  const trunkVlans = new Map<string, Set<number>>();
  const minMtu: Record<string, number> = {};
  const needMtu = (iface: string, mtu: number | undefined) => {
    if (mtu !== undefined) minMtu[iface] = Math.max(minMtu[iface] ?? 0, mtu);
  };
  const policies: { bridge: string; policy: BridgePolicy }[] = [];
  for (const network of site.networks) {
    bridges.push(network.bridge);
    const uplink = hostUplink(site, host, network);
    needMtu(uplink.interface, network.mtu);
    needMtu(uplink.parent, network.mtu);
    policies.push({
      bridge: network.bridge,
      policy: {
        network: network.name,
        peers: network.peers,
        ipv6: network.ipv6,
        gateway: network.gateway,
        uplink: uplink.mode === 'vlan' ? uplink.interface : bridgePatchPort(network),
      },
    });
    if (uplink.mode === 'vlan') {
      vlanInterfaces.push({
        interface: uplink.interface,
        parent: uplink.parent,
        vlan: network.vlan,
        network: network.name,
        ...(network.mtu === undefined ? {} : { mtu: network.mtu }),
      });
      ports.push({ bridge: network.bridge, port: uplink.interface, tag: network.vlan, trunks: [], role: 'uplink' });
    } else {
      const vlans = networkVlans(network);
      const set = trunkVlans.get(uplink.interface) ?? new Set<number>();
      for (const vlan of vlans) set.add(vlan);
      trunkVlans.set(uplink.interface, set);
      ports.push({
        bridge: network.bridge,
        port: bridgePatchPort(network),
        trunks: vlans,
        peer: uplinkPatchPort(network),
        role: 'patch',
      });
      ports.push({
        bridge: uplinkBridge,
        port: uplinkPatchPort(network),
        trunks: vlans,
        peer: bridgePatchPort(network),
        role: 'patch',
      });
    }
  }
  if (trunkVlans.size > 0) bridges.unshift(uplinkBridge);
  for (const [parent, vlans] of trunkVlans) {
    ports.push({ bridge: uplinkBridge, port: parent, trunks: [...vlans].sort((a, b) => a - b), role: 'uplink' });
  }
  return {
    host: host ?? '',
    vlanInterfaces,
    trunkParents: [...trunkVlans.keys()],
    minMtu,
    bridges,
    ports,
    networks: site.networks,
    policies,
  };
}
