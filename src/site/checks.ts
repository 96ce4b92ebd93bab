import type { SiteIssue } from '../errors/site-error.js';
import { intToIpv4, ipv4ToInt, parseIpv4Cidr, subnetContains, subnetsOverlap, type Ipv4Subnet } from './address.js';
import { describeValue } from './describe.js';
import { formatPath } from './issues.js';
import type { Backend, Network } from './model.js';

/**
 * The rules no single field can express: addresses that must agree with their
 * subnet, and networks that must not collide. Every violation is returned, none
 * thrown; an empty list means the networks are consistent.
 */
export function checkNetworks(networks: readonly Network[], backend: Backend): SiteIssue[] {
  const issues: SiteIssue[] = [];
  for (const network of networks) issues.push(...checkNetwork(network));
  issues.push(...checkCollisions(networks), ...checkSshAccess(networks, backend));
  const management = backend.management.address;
  for (const network of networks) {
    const subnet = parseIpv4Cidr(network.subnet);
    if (subnet && subnetContains(subnet, management)) {
      issues.push({
        path: 'backend.management.address',
        message: `expected an address outside every VM network (the API must not be reachable from VMs), found ${management} inside networks.${network.name}.subnet ${network.subnet}`,
      });
    }
  }
  return issues;
}

function checkNetwork(network: Network): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const at = (...keys: PropertyKey[]) => formatPath(['networks', network.name, ...keys]);
  const subnet = parseIpv4Cidr(network.subnet);
  if (!subnet) return issues;
  const bounds = `${intToIpv4(subnet.first + 1)}-${intToIpv4(subnet.last - 1)}`;
  const inside = (address: string) => subnetContains(subnet, address);
  const usable = (address: string) => inside(address) && !isEdge(subnet, address);

  if (subnet.prefix > 30) {
    issues.push({
      path: at('subnet'),
      message: `expected a prefix of /30 or shorter (room for a gateway and VMs), found ${network.subnet}`,
    });
    return issues;
  }
  if (!usable(network.gateway)) {
    issues.push({
      path: at('gateway'),
      message: `expected a host address of ${network.subnet} (${bounds}), found ${network.gateway}`,
    });
  }
  const { start, end } = network.dhcp;
  for (const [key, address] of [
    ['start', start],
    ['end', end],
  ] as const) {
    if (!usable(address)) {
      issues.push({
        path: at('dhcp', key),
        message: `expected a host address of ${network.subnet} (${bounds}), found ${address}`,
      });
    }
  }
  if (ipv4ToInt(start) > ipv4ToInt(end)) {
    issues.push({ path: at('dhcp'), message: `expected start <= end, found start ${start} after end ${end}` });
  } else if (ipv4ToInt(start) <= ipv4ToInt(network.gateway) && ipv4ToInt(network.gateway) <= ipv4ToInt(end)) {
    issues.push({
      path: at('dhcp'),
      message: `expected a range that leaves out the gateway ${network.gateway}, found ${start}-${end}`,
    });
  }
  if (network.audit === 'records' && network.egress !== 'allow-list') {
    // A flow record names its VM by the NIC id in the flow's ct mark, which only allow-list networks set.
    issues.push({
      path: at('audit'),
      message: `expected 'counts' on a network with ${describeValue(network.egress)} egress (flow records need 'allow-list' egress), found 'records'`,
    });
  }
  if (network.kind === 'secure' && (network.egress !== 'allow-list' || network.dns !== 'controlled')) {
    issues.push({
      path: at(network.egress !== 'allow-list' ? 'egress' : 'dns'),
      message: `expected 'allow-list' egress and 'controlled' DNS on a network of kind secure, found egress ${describeValue(network.egress)} and dns ${describeValue(network.dns)}`,
    });
  } else if (network.dns === 'controlled' && network.egress !== 'allow-list') {
    // The DNS front tells VMs apart by source address, which only allow-list networks pin to a registered NIC.
    issues.push({
      path: at('dns'),
      message: `expected 'open' DNS on a network with ${describeValue(network.egress)} egress (controlled DNS needs 'allow-list' egress), found 'controlled'`,
    });
  }
  if (network.ipv6 === 'link-local' && network.peers !== 'all') {
    issues.push({
      path: at('ipv6'),
      message: `expected 'off' with peers ${describeValue(network.peers)} (link-local IPv6 reaches only other VMs, which peers ${describeValue(network.peers)} keeps apart), found "link-local"`,
    });
  }
  issues.push(...checkPortgroups(network, at), ...checkReservations(network, subnet, at));
  return issues;
}

function checkPortgroups(network: Network, at: (...keys: PropertyKey[]) => string): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const seen = new Map<string, number>();
  let defaultAt: number | undefined;
  network.portgroups.forEach((group, index) => {
    if (group.vlan !== network.vlan) {
      const why =
        network.uplink.mode === 'vlan'
          ? `on a vlan-mode uplink nothing carries VLAN ${group.vlan} off the host (${network.uplink.interface} carries only ${network.vlan})`
          : `the backend serves this network (DHCP, gateway, DNS) only on VLAN ${network.vlan} (${network.gatewayInterface}), so VMs on VLAN ${group.vlan} would reach nothing`;
      issues.push({
        path: at('portgroups', index, 'vlan'),
        message: `expected the network's VLAN ${network.vlan} (or no vlan), found ${group.vlan}: ${why}`,
      });
    }
    const first = seen.get(group.name);
    if (first !== undefined) {
      issues.push({
        path: at('portgroups', index, 'name'),
        message: `expected a name unique within the network, found ${describeValue(group.name)} again (first at portgroups[${first}])`,
      });
    } else seen.set(group.name, index);
    if (group.default) {
      if (defaultAt !== undefined) {
        issues.push({
          path: at('portgroups', index, 'default'),
          message: `expected at most one default portgroup, found a second (first at portgroups[${defaultAt}])`,
        });
      } else defaultAt = index;
    }
  });
  return issues;
}

function checkReservations(network: Network, subnet: Ipv4Subnet, at: (...keys: PropertyKey[]) => string): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const macs = new Map<string, number>();
  const ips = new Map<string, number>();
  network.reservations.forEach((reservation, index) => {
    const { mac, ip } = reservation;
    if (!subnetContains(subnet, ip) || isEdge(subnet, ip) || ip === network.gateway) {
      issues.push({
        path: at('reservations', index, 'ip'),
        message: `expected a host address of ${network.subnet} other than the gateway, found ${ip}`,
      });
    }
    for (const [key, value, seen] of [
      ['mac', mac, macs],
      ['ip', ip, ips],
    ] as const) {
      const first = seen.get(value);
      if (first !== undefined) {
        issues.push({
          path: at('reservations', index, key),
          message: `expected a ${key} unique within the network, found ${value} again (first at reservations[${first}])`,
        });
      } else seen.set(value, index);
    }
  });
  return issues;
}

function checkCollisions(networks: readonly Network[]): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const vlans = new Map<number, string>();
  const claimVlan = (vlan: number, owner: string, path: string) => {
    const first = vlans.get(vlan);
    if (first !== undefined) {
      issues.push({ path, message: `expected a VLAN no other network uses, found ${vlan}, already used by ${first}` });
    } else vlans.set(vlan, owner);
  };
  const unique = new Map<string, string>();
  const claim = (kind: string, value: string, owner: string, path: string) => {
    const key = `${kind}\0${value}`;
    const first = unique.get(key);
    if (first !== undefined) {
      issues.push({
        path,
        message: `expected ${kind} of its own, found ${describeValue(value)}, already used by ${first}`,
      });
    } else unique.set(key, owner);
  };
  const reservedMacs = new Map<string, string>();
  networks.forEach((network, index) => {
    const base = ['networks', network.name] as const;
    claimVlan(network.vlan, `networks.${network.name}`, formatPath([...base, 'vlan']));
    network.reservations.forEach((reservation, r) => {
      const owner = `networks.${network.name}.reservations[${r}]`;
      const first = reservedMacs.get(reservation.mac);
      // Within one network the reservation check reports it; across networks the backend would refuse the second NIC.
      if (first !== undefined && !first.startsWith(`networks.${network.name}.`)) {
        issues.push({
          path: formatPath([...base, 'reservations', r, 'mac']),
          message: `expected a MAC no other network reserves (the backend holds one registration per MAC), found ${reservation.mac}, already reserved by ${first}`,
        });
      } else if (first === undefined) reservedMacs.set(reservation.mac, owner);
    });
    claim('a bridge', network.bridge, `networks.${network.name}`, formatPath([...base, 'bridge']));
    claim(
      'a gateway interface',
      network.gatewayInterface,
      `networks.${network.name}`,
      formatPath([...base, 'gatewayInterface']),
    );
    if (network.uplink.mode === 'vlan') {
      claim(
        'an uplink interface',
        network.uplink.interface,
        `networks.${network.name}`,
        formatPath([...base, 'uplink', 'interface']),
      );
    }
    const subnet = parseIpv4Cidr(network.subnet);
    for (const other of networks.slice(0, index)) {
      const otherSubnet = parseIpv4Cidr(other.subnet);
      if (subnet && otherSubnet && subnetsOverlap(subnet, otherSubnet)) {
        issues.push({
          path: formatPath([...base, 'subnet']),
          message: `expected a subnet that overlaps no other network, found ${network.subnet}, overlapping networks.${other.name}.subnet ${other.subnet}`,
        });
      }
    }
  });
  return issues;
}

function isEdge(subnet: Ipv4Subnet, address: string): boolean {
  const value = ipv4ToInt(address);
  return value === subnet.first || value === subnet.last;
}

/**
 * SSH access: each network's port range leaves out the API port and overlaps
 * no other network's (one map holds every forward, keyed by port); the
 * address clients connect to lies outside every VM network; at least one
 * client network is allowed (`enabled: false` turns access off).
 */
function checkSshAccess(networks: readonly Network[], backend: Backend): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const api = backend.management.port;
  const text = (r: { from: number; to: number }) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`);
  networks.forEach((network, index) => {
    const ssh = network.ssh;
    if (ssh === undefined) return;
    const at = (...keys: PropertyKey[]) => formatPath(['networks', network.name, 'ssh', ...keys]);
    if (ssh.ports.from <= api && api <= ssh.ports.to) {
      issues.push({
        path: at('ports'),
        message: `expected a port range that leaves out the API port (backend.management.port ${api}), found ${text(ssh.ports)}`,
      });
    }
    for (const other of networks.slice(0, index)) {
      if (other.ssh && other.ssh.ports.from <= ssh.ports.to && ssh.ports.from <= other.ssh.ports.to) {
        issues.push({
          path: at('ports'),
          message: `expected a port range no other network's SSH access uses, found ${text(ssh.ports)}, overlapping networks.${other.name}.ssh.ports ${text(other.ssh.ports)}`,
        });
      }
    }
    const address = ssh.address;
    const inside = address === undefined ? undefined : networks.find((n) => contains(n.subnet, address));
    if (address !== undefined && inside !== undefined) {
      issues.push({
        path: at('address'),
        message: `expected an address outside every VM network (clients come through the uplink), found ${address} inside networks.${inside.name}.subnet ${inside.subnet}`,
      });
    }
    if (ssh.sources.length === 0) {
      issues.push({
        path: at('sources'),
        message: 'expected at least one client network (to turn SSH access off, set enabled: false), found none',
      });
    }
  });
  return issues;
}

function contains(cidr: string, address: string): boolean {
  const subnet = parseIpv4Cidr(cidr);
  return subnet !== undefined && subnetContains(subnet, address);
}
