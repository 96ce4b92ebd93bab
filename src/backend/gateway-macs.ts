/**
 * The gateway's MAC on each network, which hosts pin VM ports to (port
 * security): the site's `gatewayMac` when set (a VRRP MAC), else the MAC of
 * the backend's own `gatewayInterface`, read from sysfs of the namespace the
 * backend runs in. Looked up when asked and kept once found. For the API's
 * register and peers answers. May not: change anything.
 */
import { readFileSync } from 'node:fs';
import type { Site } from '../site/model.js';
import { isUnicastMac, normalizeMac } from '../site/mac.js';

/** The gateway's MAC on a network, or `undefined` when it cannot be told (the interface is missing). */
export type GatewayMacs = (network: string) => string | undefined;

/**
 * The gateway MACs of a site's networks.
 *
 * @param read reads an interface's MAC (default: `/sys/class/net/<name>/address`); tests pass their own.
 */
export function gatewayMacs(site: Site, read: (iface: string) => string | undefined = readInterfaceMac): GatewayMacs {
  const known = new Map<string, string>();
  return (name) => {
    const network = site.networks.find((n) => n.name === name);
    if (network === undefined) return undefined;
    if (network.gatewayMac !== undefined) return network.gatewayMac;
    const cached = known.get(name);
    if (cached !== undefined) return cached;
    const mac = read(network.gatewayInterface);
    if (mac !== undefined && isUnicastMac(mac)) {
      known.set(name, normalizeMac(mac));
      return normalizeMac(mac);
    }
    return undefined;
  };
}

/** An interface's MAC from sysfs (its name was checked by the site's schema: no `/`). */
export function readInterfaceMac(iface: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
