/**
 * ARP on the VM networks: the backend answers a VM network's ARP requests
 * only for that network's gateway address, never for its management or
 * uplink addresses (Linux's default answers for any local address on any
 * interface). Pure: the settings each gateway interface needs, and how the
 * kernel combines them with `conf/all`.
 */
import { nftCheck } from '../checks.js';
import type { Site } from '../../site/model.js';

/** The per-interface ARP sysctls the backend sets (`net.ipv4.conf.<if>.<key>`). */
export const ARP_SETTINGS = {
  /** 1: answer only for an address configured on the interface the request came in on. */
  arp_ignore: 1,
  /** 2: in requests it sends, use the interface's own address as the sender. */
  arp_announce: 2,
  /** 1: answer only if the kernel would route the reply out the interface the request came in on. */
  arp_filter: 1,
} as const;

/** One of {@link ARP_SETTINGS}. */
export type ArpKey = keyof typeof ARP_SETTINGS;

/** One setting for one interface. */
export interface ArpSetting {
  readonly iface: string;
  readonly key: ArpKey;
  readonly value: number;
}

/** Every setting the site's gateway interfaces need. */
export function arpSettings(site: Site): ArpSetting[] {
  return site.networks.flatMap((n) =>
    (Object.keys(ARP_SETTINGS) as ArpKey[]).map((key) => ({
      iface: nftCheck.interfaceName('gatewayInterface', n.gatewayInterface),
      key,
      value: ARP_SETTINGS[key],
    })),
  );
}

/** The file of a setting: `/proc/sys/net/ipv4/conf/<iface>/<key>`. */
export function arpPath(iface: string, key: ArpKey): string {
  return `/proc/sys/net/ipv4/conf/${nftCheck.interfaceName('iface', iface)}/${key}`;
}

/** The value the kernel acts on, given `conf/all` and `conf/<iface>`: the larger (`arp_filter`: either set). */
export function effectiveArp(key: ArpKey, all: number, iface: number): number {
  return key === 'arp_filter' ? (all !== 0 || iface !== 0 ? 1 : 0) : Math.max(all, iface);
}
