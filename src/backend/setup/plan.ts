/**
 * The backend planner: a pure function from what was observed on the backend
 * machine (or in its network namespace) to the actions that make it the
 * site's gateway, in the order they must run; an action it must not take on
 * its own is `blocked`, with its reason and fix. Built from one piece per part
 * (gateway interfaces, kernel settings, the boot-time settings file, the
 * backend's own links, the systemd unit), which doctor's checks use too.
 *
 * For: `backend plan|apply` (through `./apply.ts`) and doctor. May not:
 * observe or change anything (`./observe.ts` and `./execute.ts` do).
 */
import { join } from 'node:path';
import { parseIpv4Cidr, subnetContains } from '../../site/address.js';
import type { Network, Site } from '../../site/model.js';
import {
  effectiveSetting,
  gatewaySysctls,
  interfaceKey,
  interfaceSettings,
  IP_FORWARD,
  settingHolds,
} from '../sysctls.js';
import type { BackendAction, BackendPlanOptions, ObservedBackend } from './model.js';

/** The backend's systemd unit. */
export const BACKEND_UNIT = 'ticrypt-net-backend.service';

/** Where the boot-time settings go (under `--root`). */
export const SYSCTL_FILE = '/etc/sysctl.d/60-ticrypt-net.conf';

/** Where the unit goes (under `--root`). */
export const UNIT_FILE = `/etc/systemd/system/${BACKEND_UNIT}`;

/** What the site wants of one network on the backend. */
export interface GatewayInterface {
  readonly network: string;
  readonly interface: string;
  /** The gateway address with the subnet's prefix, e.g. `192.168.128.1/17`. */
  readonly address: string;
  readonly subnet: string;
  readonly mtu?: number;
  /** Set when the interface is the derived `<trunk>.<vlan>`: the planner may create it. */
  readonly vlan?: { readonly parent: string; readonly id: number };
}

/** Each network's interface on the backend, as the site says. */
export function gatewayInterfaces(site: Site): GatewayInterface[] {
  return site.networks.map((network: Network) => {
    const prefix = parseIpv4Cidr(network.subnet)?.prefix ?? 32;
    const derived = network.gatewayInterface === `${site.backend.trunk}.${network.vlan}`;
    return {
      network: network.name,
      interface: network.gatewayInterface,
      address: `${network.gateway}/${prefix}`,
      subnet: network.subnet,
      ...(network.mtu === undefined ? {} : { mtu: network.mtu }),
      ...(derived ? { vlan: { parent: site.backend.trunk, id: network.vlan } } : {}),
    };
  });
}

/**
 * Plan what to change so the backend is the site's gateway: per network its
 * interface (the VLAN `<trunk>.<vlan>` on the trunk, or the given
 * `gatewayInterface`) up, at the network's MTU, carrying the gateway address
 * and nothing else; IPv4 forwarding and each gateway interface's reverse-path
 * and ARP settings, now and at boot; the systemd unit installed and enabled.
 * Pure: the same inputs give the same actions. An empty list means nothing to change.
 *
 * @example const actions = planBackend(site, await observeBackend(site, { netns: 'backend' }), { netns: 'backend' });
 */
export function planBackend(site: Site, observed: ObservedBackend, options: BackendPlanOptions = {}): BackendAction[] {
  return [
    ...planGatewayLinks(site, observed),
    ...planEdges(site, observed),
    ...planSysctls(site, observed),
    ...planSysctlFile(site, observed, options),
    ...planUnit(observed, options),
  ];
}

/** The gateway interfaces: created (a derived VLAN), up, at the network's MTU, with the gateway address and only it. */
export function planGatewayLinks(site: Site, observed: ObservedBackend): BackendAction[] {
  const actions: BackendAction[] = [];
  const link = (name: string) => observed.links.find((l) => l.name === name);
  for (const want of gatewayInterfaces(site)) {
    const found = link(want.interface);
    const subject = `interface ${want.interface}`;
    if (found === undefined) {
      if (want.vlan === undefined) {
        actions.push({
          kind: 'blocked',
          subject,
          reason: `the gateway interface of network ${want.network} does not exist`,
          fix: `create ${want.interface} (the interface that reaches VLAN ${site.networks.find((n) => n.name === want.network)?.vlan ?? '?'}), or leave gatewayInterface out to use ${site.backend.trunk}.<vlan>; then run backend apply again`,
        });
      } else if (link(want.vlan.parent) === undefined) {
        actions.push({
          kind: 'blocked',
          subject: `interface ${want.vlan.parent}`,
          reason: 'the trunk (backend.trunk) does not exist',
          fix: `create ${want.vlan.parent} (the bond or NIC that carries the VM networks' VLANs tagged), or set backend.trunk; then run backend apply again`,
        });
      } else {
        actions.push({
          kind: 'create-vlan-interface',
          interface: want.interface,
          parent: want.vlan.parent,
          vlan: want.vlan.id,
          method: observed.networkManager ? 'nmcli' : 'ip',
          address: want.address,
          ...(want.mtu === undefined ? {} : { mtu: want.mtu }),
        });
        if (!observed.networkManager)
          actions.push({ kind: 'add-address', interface: want.interface, address: want.address });
        actions.push({ kind: 'set-link-up', interface: want.interface });
      }
      continue;
    }
    if (
      want.vlan !== undefined &&
      found.kind === 'vlan' &&
      (found.vlanId !== want.vlan.id || found.parent !== want.vlan.parent)
    ) {
      actions.push({
        kind: 'blocked',
        subject,
        reason: `it is VLAN ${found.vlanId ?? '?'} on ${found.parent ?? '?'}, expected VLAN ${want.vlan.id} on ${want.vlan.parent}`,
        fix: `delete it (ip link del ${want.interface}, and its NetworkManager/ifupdown config), then run backend apply again`,
      });
      continue;
    }
    if (!found.up) actions.push({ kind: 'set-link-up', interface: want.interface });
    if (want.mtu !== undefined && found.mtu !== undefined && found.mtu < want.mtu) {
      const parent = want.vlan === undefined ? undefined : link(want.vlan.parent);
      if (parent?.mtu !== undefined && parent.mtu < want.mtu) {
        actions.push({
          kind: 'blocked',
          subject: `interface ${parent.name}`,
          reason: `its MTU is ${parent.mtu}, below network ${want.network}'s ${want.mtu} (larger frames would be dropped)`,
          fix: `raise it (ip link set dev ${parent.name} mtu ${want.mtu}, and in its NetworkManager/ifupdown config; the switch ports too), then run backend apply again`,
        });
      } else actions.push({ kind: 'set-link-mtu', interface: want.interface, mtu: want.mtu, was: found.mtu });
    }
    actions.push(...planAddresses(want, found.addresses));
  }
  return actions;
}

/** The gateway address added; stale addresses of the network's subnet removed; anything else the operator's. */
function planAddresses(want: GatewayInterface, addresses: readonly string[]): BackendAction[] {
  const actions: BackendAction[] = [];
  if (!addresses.includes(want.address)) {
    actions.push({ kind: 'add-address', interface: want.interface, address: want.address });
  }
  const subnet = parseIpv4Cidr(want.subnet);
  const foreign: string[] = [];
  for (const address of addresses) {
    if (address === want.address) continue;
    const ip = address.slice(0, address.indexOf('/'));
    const inSubnet = subnet !== undefined && !ip.includes(':') && subnetContains(subnet, ip);
    if (inSubnet) {
      actions.push({
        kind: 'remove-address',
        interface: want.interface,
        address,
        reason: `network ${want.network}'s gateway is ${want.address}`,
      });
    } else foreign.push(address);
  }
  if (foreign.length > 0) {
    actions.push({
      kind: 'blocked',
      subject: `interface ${want.interface}`,
      reason: `it has address(es) ${foreign.join(', ')} outside ${want.subnet}: the VMs of network ${want.network} would reach the backend there`,
      fix: `move them off ${want.interface} (ip addr del ADDRESS dev ${want.interface}, and in its NetworkManager/ifupdown config), then run backend apply again`,
    });
  }
  return actions;
}

/** The backend's own links: the uplink (VM egress) exists, and the management address (the API) is on an interface. */
export function planEdges(site: Site, observed: ObservedBackend): BackendAction[] {
  const actions: BackendAction[] = [];
  const { uplink, management } = site.backend;
  if (!observed.links.some((l) => l.name === uplink)) {
    actions.push({
      kind: 'blocked',
      subject: `interface ${uplink}`,
      reason: 'the uplink (backend.uplink) does not exist: open networks have no way out',
      fix: `set backend.uplink to the interface towards the internet, or create ${uplink}; then run backend apply again`,
    });
  }
  const local = observed.links.some((l) => l.addresses.some((a) => a.slice(0, a.indexOf('/')) === management.address));
  if (!local) {
    actions.push({
      kind: 'blocked',
      subject: `address ${management.address}`,
      reason: 'the management address (backend.management.address) is on no interface: the API cannot listen on it',
      fix: `add ${management.address} to the backend's management interface (never a VM network's), or set backend.management.address; then run backend apply again`,
    });
  }
  return actions;
}

/**
 * IPv4 forwarding and each gateway interface's reverse-path and ARP settings.
 * A setting `conf/all` overrides in the wrong direction is the operator's
 * (changing `all` would change every interface).
 */
export function planSysctls(site: Site, observed: ObservedBackend): BackendAction[] {
  const actions: BackendAction[] = [];
  const now = observed.sysctls;
  if (now[IP_FORWARD.key] !== IP_FORWARD.value) {
    actions.push({ kind: 'set-sysctl', key: IP_FORWARD.key, value: IP_FORWARD.value, ...was(now[IP_FORWARD.key]) });
  }
  const created = new Set(
    planGatewayLinks(site, observed).flatMap((a) => (a.kind === 'create-vlan-interface' ? [a.interface] : [])),
  );
  for (const { iface, key, value: want } of interfaceSettings(site)) {
    // An interface that will not exist has no settings to set: its block says why.
    if (!created.has(iface) && !observed.links.some((l) => l.name === iface)) continue;
    // A kernel without IPv6 has nothing to turn off.
    if (key === 'disable_ipv6' && now[interfaceKey('all', key)] === undefined) continue;
    const all = now[interfaceKey('all', key)] ?? 0;
    const current = now[interfaceKey(iface, key)];
    if (current !== undefined && settingHolds(key, effectiveSetting(key, all, current))) continue;
    if (!settingHolds(key, effectiveSetting(key, all, want))) {
      actions.push({
        kind: 'blocked',
        subject: `sysctl ${interfaceKey(iface, key)}`,
        reason: `net.ipv4.conf.all.${key} is ${all}, which overrides ${iface}'s ${want} (the kernel uses ${key === 'arp_filter' ? 'either' : 'the larger'})`,
        fix: `set net.ipv4.conf.all.${key} to ${key === 'arp_filter' ? 0 : `at most ${want}`} (it applies to every interface; check what set it, e.g. /etc/sysctl.d/), then run backend apply again`,
      });
      continue;
    }
    actions.push({ kind: 'set-sysctl', key: interfaceKey(iface, key), value: want, ...was(current) });
  }
  return actions;
}

/** The settings again at boot: `/etc/sysctl.d/60-ticrypt-net.conf` (systemd-udevd applies an interface's when it appears). */
export function planSysctlFile(
  site: Site,
  observed: ObservedBackend,
  options: BackendPlanOptions = {},
): BackendAction[] {
  const text = renderSysctlFile(site);
  if (observed.sysctlFile === text) return [];
  return [
    {
      kind: 'write-file',
      what: 'boot-time sysctl settings',
      path: join(options.root ?? '/', SYSCTL_FILE),
      text,
      mode: 0o644,
      reason: observed.sysctlFile === undefined ? 'missing' : 'differs',
    },
  ];
}

/** The text of the boot-time settings file. */
export function renderSysctlFile(site: Site): string {
  return [
    `# Managed by ticrypt-net backend apply (site ${site.name}): the VM networks' gateway settings.`,
    "# Keys use / so interface names keep their dots; systemd-udevd applies an interface's when it appears.",
    ...gatewaySysctls(site).map((s) => `${s.key} = ${s.value}`),
    '',
  ].join('\n');
}

/**
 * The systemd unit installed and enabled. Left alone in a network namespace
 * (the unit is the machine's) and with `--no-service`; without systemd, blocked.
 */
export function planUnit(observed: ObservedBackend, options: BackendPlanOptions = {}): BackendAction[] {
  if (options.netns !== undefined || options.noService === true) return [];
  if (!observed.systemd) {
    return [
      {
        kind: 'blocked',
        subject: `unit ${BACKEND_UNIT}`,
        reason: 'systemd is not running here: the backend service cannot be enabled',
        fix: "run ticrypt-net backend serve under this machine's service manager, and pass --no-service to backend plan|apply",
      },
    ];
  }
  const actions: BackendAction[] = [];
  const unit = observed.unit ?? { enabled: false };
  if (options.unitText !== undefined && unit.text !== options.unitText) {
    actions.push({
      kind: 'write-file',
      what: 'systemd unit',
      path: join(options.root ?? '/', UNIT_FILE),
      text: options.unitText,
      mode: 0o644,
      reason: unit.text === undefined ? 'missing' : 'differs',
    });
    actions.push({ kind: 'reload-systemd' });
  }
  if (!unit.enabled) actions.push({ kind: 'enable-unit', unit: BACKEND_UNIT });
  return actions;
}

function was(value: number | undefined): { was?: number } {
  return value === undefined ? {} : { was: value };
}
