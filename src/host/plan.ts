/**
 * The host planner: a pure function from what was observed on a host to the
 * actions that make it what the site says, in the order they must run; an
 * action it must not take on its own is `blocked`, with its reason and fix.
 * Built from one piece per part (Open vSwitch, interfaces, bridges, ports,
 * networks), which doctor's checks use too, so the two never disagree.
 *
 * For: `host plan|apply` (through `./apply.ts`) and doctor. May not: observe or
 * change anything (`./observe.ts` and `./execute.ts` do).
 */
import { renderNetworkXml } from '../libvirt/network-xml.js';
import { DEFAULT_LIBVIRT_URI } from '../names.js';
import type { Site } from '../site/model.js';
import { hostLayout, type DesiredPort, type HostLayout } from './layout.js';
import {
  MANAGED_KEY,
  MANAGED_VALUE,
  type Action,
  type ObservedHost,
  type ObservedPort,
  type PlanOptions,
} from './model.js';
import { networkDifferences } from './network-diff.js';
import { planFlowsOfHost } from './flows/plan.js';
import { policyExternalIds } from '../portsec/policy.js';

/**
 * Plan what to change on `host` so its OVS bridges, uplinks and libvirt
 * networks are what the site says, from what was observed there. Pure: the
 * same inputs give the same actions, in the order they must run (interfaces,
 * bridges, ports, networks). An empty list means nothing to change.
 *
 * Only what the site manages is touched: the bridges and networks it names,
 * and ports marked `external_ids:ticrypt-net=managed`. What the planner must
 * not do on its own (redefine a network VMs are using, take an address off
 * an interface, move a port off another bridge) becomes a `blocked` action
 * that says what the operator should do instead.
 *
 * @example
 * const actions = planHost(site, 'kvm1', await observeHost(site), { datapathType: 'netdev' });
 */
export function planHost(
  site: Site,
  host: string | undefined,
  observed: ObservedHost,
  options: PlanOptions = {},
): Action[] {
  const ovs = planOvs(observed);
  if (ovs.length > 0) return ovs;
  const layout = hostLayout(site, host, options);
  const setup = [
    ...planLinks(layout, observed),
    ...planBridges(layout, observed, options),
    ...planBridgePolicies(layout, observed),
    ...planPorts(layout, observed),
    ...planNetworks(site, layout, observed),
  ];
  // Flows are planned from the bridges and ports as they are: once nothing is left to change there.
  return reshapes(setup) ? setup : [...setup, ...planFlowsOfHost(observed)];
}

/**
 * Whether actions change bridges or ports, or are blocked on them (the flows
 * are then planned only once they are right).
 */
export function reshapes(actions: readonly Action[]): boolean {
  return actions.some(
    (a) => RESHAPING.has(a.kind) || (a.kind === 'blocked' && /^(bridge|port|interface) /.test(a.subject)),
  );
}

/** Actions after which the OVS ports (and so the flows' OpenFlow port numbers and policies) differ. */
const RESHAPING = new Set<Action['kind']>([
  'create-vlan-interface',
  'create-bridge',
  'set-bridge-policy',
  'add-port',
  'set-port-vlan',
  'remove-port',
]);

/**
 * Port security on each network bridge: `fail_mode=secure` (after an
 * ovs-vswitchd restart nothing passes until the flows are back: closed) and
 * its policy in `external_ids` (what the hook and the sync pin VM ports by).
 * A bridge being created gets both in the same call (see {@link planBridges}).
 */
export function planBridgePolicies(layout: HostLayout, observed: ObservedHost): Action[] {
  const actions: Action[] = [];
  for (const { bridge, policy } of layout.policies) {
    const found = observed.bridges.find((b) => b.name === bridge);
    if (found === undefined) continue;
    const differences: string[] = [];
    if (found.failMode !== 'secure') differences.push(`fail_mode: expected secure, found ${found.failMode ?? 'unset'}`);
    for (const [key, value] of Object.entries(policyExternalIds(policy))) {
      const now = found.externalIds[key];
      if (now !== value) differences.push(`${key}: expected ${value}, found ${now ?? 'none'}`);
    }
    if (differences.length > 0) actions.push({ kind: 'set-bridge-policy', bridge, policy, differences });
  }
  return actions;
}

/** Open vSwitch itself: one `blocked` action when ovsdb-server does not answer (nothing else can be planned then). */
export function planOvs(observed: ObservedHost): Action[] {
  if (observed.ovsRunning) return [];
  return [
    {
      kind: 'blocked',
      subject: 'Open vSwitch',
      reason: 'ovs-vsctl cannot reach ovsdb-server',
      fix: 'start Open vSwitch (systemctl start openvswitch-switch), then run host apply again',
    },
  ];
}

/**
 * The kernel interfaces: VLAN interfaces to create or bring up (never with an
 * address) at the site's MTU, trunk parents to bring up (never with an
 * address: OVS would take their traffic from the host). A parent whose MTU is
 * below a network's is the operator's to raise.
 */
export function planLinks(layout: HostLayout, observed: ObservedHost): Action[] {
  const actions: Action[] = [];
  const link = (name: string) => observed.links.find((l) => l.name === name);
  const ours = new Set(layout.vlanInterfaces.map((v) => v.interface));
  const mtuTooSmall = (name: string) => {
    const found = link(name);
    const need = layout.minMtu[name];
    return found?.mtu !== undefined && need !== undefined && found.mtu < need ? { found: found.mtu, need } : undefined;
  };
  for (const vlan of layout.vlanInterfaces) {
    const found = link(vlan.interface);
    if (found === undefined) {
      actions.push({
        kind: 'create-vlan-interface',
        interface: vlan.interface,
        parent: vlan.parent,
        vlan: vlan.vlan,
        method: observed.networkManager ? 'nmcli' : 'ip',
        ...(vlan.mtu === undefined ? {} : { mtu: vlan.mtu }),
      });
      actions.push({ kind: 'set-link-up', interface: vlan.interface });
      continue;
    }
    if (!found.up) actions.push({ kind: 'set-link-up', interface: vlan.interface });
    const small = mtuTooSmall(vlan.interface);
    // A VLAN interface cannot exceed its parent's MTU: the parent's block says so instead.
    if (small !== undefined && mtuTooSmall(vlan.parent) === undefined) {
      actions.push({ kind: 'set-link-mtu', interface: vlan.interface, mtu: small.need, was: small.found });
    }
    actions.push(
      ...addressBlocked(
        vlan.interface,
        found.addresses,
        'a bridge port must have none (the host would sit on a VM network)',
      ),
    );
  }
  for (const name of Object.keys(layout.minMtu)) {
    const small = mtuTooSmall(name);
    if (ours.has(name) || small === undefined) continue;
    actions.push({
      kind: 'blocked',
      subject: `interface ${name}`,
      reason: `its MTU is ${small.found}, below the ${small.need} the site's networks on it need (larger frames would be dropped)`,
      fix: `raise it (ip link set dev ${name} mtu ${small.need}, and in its NetworkManager/ifupdown config; the switch ports too), then run host apply again`,
    });
  }
  for (const parent of layout.trunkParents) {
    const found = link(parent);
    if (found === undefined) {
      actions.push({
        kind: 'blocked',
        subject: `interface ${parent}`,
        reason: 'the trunk uplink does not exist',
        fix: `create ${parent} (the bond or NIC that carries the site's VLANs tagged), then run host apply again`,
      });
      continue;
    }
    if (!found.up) actions.push({ kind: 'set-link-up', interface: parent });
    actions.push(
      ...addressBlocked(
        parent,
        found.addresses,
        'a trunk port of Open vSwitch hands every frame to OVS, so the host would lose these addresses (its management link, if one of them is)',
        'move them to another interface (or to an OVS internal port), or put these networks in uplink.mode vlan',
      ),
    );
  }
  return actions;
}

/** The bridges the site manages: created when missing; one on the wrong datapath is the operator's to change. */
export function planBridges(layout: HostLayout, observed: ObservedHost, options: PlanOptions = {}): Action[] {
  const actions: Action[] = [];
  const datapathType = options.datapathType ?? 'system';
  for (const bridge of layout.bridges) {
    const found = observed.bridges.find((b) => b.name === bridge);
    const policy = layout.policies.find((p) => p.bridge === bridge)?.policy;
    if (found === undefined)
      actions.push({ kind: 'create-bridge', bridge, datapathType, ...(policy ? { policy } : {}) });
    else if ((found.datapathType || 'system') !== datapathType) {
      actions.push({
        kind: 'blocked',
        subject: `bridge ${bridge}`,
        reason: `datapath_type is ${found.datapathType || 'system'}, expected ${datapathType}`,
        fix: `ovs-vsctl set bridge ${bridge} datapath_type=${datapathType} (briefly interrupts its ports), or pass the matching --datapath`,
      });
    }
  }
  return actions;
}

/** The uplink and patch ports: added, re-tagged, or (marked ticrypt-net's, no longer in the site) removed. */
export function planPorts(layout: HostLayout, observed: ObservedHost): Action[] {
  const actions: Action[] = [];
  for (const desired of layout.ports) actions.push(...planPort(desired, observed.ports));
  const wanted = new Set(layout.ports.map((p) => p.port));
  for (const port of observed.ports) {
    if (layout.bridges.includes(port.bridge) && isManaged(port) && !wanted.has(port.name)) {
      actions.push({
        kind: 'remove-port',
        bridge: port.bridge,
        port: port.name,
        reason: 'added by ticrypt-net, no longer in the site',
      });
    }
  }
  return actions;
}

/**
 * The libvirt networks: defined, started and autostarted as rendered; one
 * whose definition differs is redefined, unless VMs use it (then it is the
 * operator's to do).
 */
export function planNetworks(site: Site, layout: HostLayout, observed: ObservedHost): Action[] {
  const actions: Action[] = [];
  for (const network of layout.networks) {
    const xml = renderNetworkXml(site, network);
    const found = observed.networks.find((n) => n.name === network.name);
    if (found === undefined) {
      actions.push({
        kind: 'define-network',
        network: network.name,
        xml,
        reason: 'missing',
        differences: [],
        wasActive: false,
      });
      actions.push(
        { kind: 'start-network', network: network.name },
        { kind: 'autostart-network', network: network.name },
      );
      continue;
    }
    const differences = networkDifferences(xml, found.xml);
    if (differences.length > 0 && found.connections > 0) {
      actions.push({
        kind: 'blocked',
        subject: `network ${network.name}`,
        reason: `its definition differs (${differences.join('; ')}) and ${found.connections} VM interface(s) use it`,
        fix: `shut down or migrate the VMs on ${network.name} (virsh -c ${DEFAULT_LIBVIRT_URI} net-dumpxml ${network.name} shows connections), then run host apply again`,
      });
    } else if (differences.length > 0) {
      actions.push({
        kind: 'define-network',
        network: network.name,
        xml,
        reason: 'differs',
        differences,
        wasActive: found.active,
      });
      actions.push(
        { kind: 'start-network', network: network.name },
        { kind: 'autostart-network', network: network.name },
      );
      continue;
    }
    if (!found.active) actions.push({ kind: 'start-network', network: network.name });
    if (!found.autostart) actions.push({ kind: 'autostart-network', network: network.name });
  }
  return actions;
}

/** Whether a port carries ticrypt-net's mark. */
export function isManaged(port: Pick<ObservedPort, 'externalIds'>): boolean {
  return port.externalIds[MANAGED_KEY] === MANAGED_VALUE;
}

function planPort(desired: DesiredPort, ports: readonly ObservedPort[]): Action[] {
  const found = ports.find((p) => p.name === desired.port);
  if (found === undefined) {
    return [
      {
        kind: 'add-port',
        bridge: desired.bridge,
        port: desired.port,
        trunks: desired.trunks,
        ...(desired.tag === undefined ? {} : { tag: desired.tag }),
        ...(desired.peer === undefined ? {} : { peer: desired.peer }),
      },
    ];
  }
  if (found.bridge !== desired.bridge) {
    return [
      {
        kind: 'blocked',
        subject: `port ${desired.port}`,
        reason: `it is a port of bridge ${found.bridge}, expected ${desired.bridge}`,
        fix: `ovs-vsctl del-port ${found.bridge} ${desired.port} once nothing needs it there, then run host apply again`,
      },
    ];
  }
  const trunks = [...found.trunks].sort((a, b) => a - b);
  if (found.tag !== desired.tag || trunks.join(',') !== desired.trunks.join(',')) {
    return [
      {
        kind: 'set-port-vlan',
        port: desired.port,
        trunks: desired.trunks,
        ...(desired.tag === undefined ? {} : { tag: desired.tag }),
        was: { trunks, ...(found.tag === undefined ? {} : { tag: found.tag }) },
      },
    ];
  }
  return [];
}

function addressBlocked(
  iface: string,
  addresses: readonly string[],
  why: string,
  fix = `remove them (ip addr flush dev ${iface}, and from its NetworkManager/ifupdown config)`,
): Action[] {
  if (addresses.length === 0) return [];
  return [
    {
      kind: 'blocked',
      subject: `interface ${iface}`,
      reason: `it has address(es) ${addresses.join(', ')}; ${why}`,
      fix: `${fix}, then run host apply again`,
    },
  ];
}
