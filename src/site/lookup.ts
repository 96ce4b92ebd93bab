import { UsageError } from '../errors/usage-error.js';
import type { Network, Portgroup, Site } from './model.js';

/**
 * The site's network of that name.
 *
 * @throws {UsageError} `E_USAGE` naming the networks the site does have.
 */
export function findNetwork(site: Site, name: string): Network {
  const network = site.networks.find((n) => n.name === name);
  if (!network) {
    throw new UsageError(
      `Unknown network ${JSON.stringify(name)}: expected one of ${site.networks.map((n) => n.name).join(', ')}`,
    );
  }
  return network;
}

/**
 * The network's portgroup of that name.
 *
 * @throws {UsageError} `E_USAGE` naming the portgroups the network does have.
 */
export function findPortgroup(network: Network, name: string): Portgroup {
  const group = network.portgroups.find((g) => g.name === name);
  if (!group) {
    const known = network.portgroups.map((g) => g.name);
    throw new UsageError(
      `Unknown portgroup ${JSON.stringify(name)} on network ${network.name}: expected ${known.length > 0 ? `one of ${known.join(', ')}` : 'none (the network has no portgroups)'}`,
    );
  }
  return group;
}

/**
 * The VLAN a NIC on `network` ends up on: its portgroup's, else the network's
 * default portgroup's, else the network's own (libvirt's precedence).
 */
export function effectiveVlan(network: Network, portgroup?: string): number {
  if (portgroup !== undefined) return findPortgroup(network, portgroup).vlan;
  return network.portgroups.find((g) => g.default)?.vlan ?? network.vlan;
}
