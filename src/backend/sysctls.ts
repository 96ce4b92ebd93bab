/**
 * The kernel settings the backend needs as the VM networks' gateway, one home
 * for `backend apply` (which sets and persists them), doctor (which checks
 * them) and the backend service (which re-asserts {@link SERVICE_ASSERTED_KEYS}
 * at start and on every check, since fail closed depends on them): IPv4
 * forwarding, and on each gateway interface strict reverse-path filtering
 * (a VM cannot send from an address its network does not route), ARP
 * answered only for that interface's own address (never the management or
 * uplink addresses, which Linux answers on any interface by default), and no
 * IPv6 (not even a link-local address: the interface carries the gateway's
 * IPv4 address and nothing else).
 *
 * Reverse-path filtering must see the packet's mark (`src_valid_mark`), on
 * the gateway interfaces and on the uplink: the fail-closed policy routing
 * blackholes forwarded VM traffic that `table inet ticrypt` did not mark, and
 * the reverse lookup of a forwarded packet runs through those rules with the
 * outgoing interface as its input. Without the mark it finds the blackhole,
 * and a strict or loose `rp_filter` (systemd's default is loose on every
 * interface) drops every forwarded packet, both ways (seen in the lab).
 *
 * Pure: names, values, paths, and how the kernel combines `conf/all` with
 * `conf/<interface>`. May not: read or write a setting.
 */
import type { Site } from '../site/model.js';

/** IPv4 forwarding, machine-wide (per network namespace). */
export const IP_FORWARD = { key: 'net/ipv4/ip_forward', value: 1 } as const;

/** What each gateway interface needs (`net.ipv4.conf.<interface>.<key>`). */
export const GATEWAY_INTERFACE_SETTINGS = {
  /** 1, strict: a packet is accepted only if its source is routed back out the interface it came in on. */
  rp_filter: 1,
  /** 1: that reverse lookup uses the packet's mark (see the module comment). */
  src_valid_mark: 1,
  /** 1: answer ARP only for an address configured on the interface the request came in on. */
  arp_ignore: 1,
  /** 2: in ARP requests it sends, use the interface's own address as the sender. */
  arp_announce: 2,
  /** 1: answer ARP only if the kernel would route the reply out the interface the request came in on. */
  arp_filter: 1,
  /** 1: no IPv6 on the interface (`net.ipv6.conf.<interface>.disable_ipv6`). */
  disable_ipv6: 1,
} as const;

/** One of {@link GATEWAY_INTERFACE_SETTINGS}. */
export type GatewaySettingKey = keyof typeof GATEWAY_INTERFACE_SETTINGS;

/** The keys of {@link GATEWAY_INTERFACE_SETTINGS}, in a fixed order. */
export const GATEWAY_SETTING_KEYS = Object.keys(GATEWAY_INTERFACE_SETTINGS) as GatewaySettingKey[];

/** What the uplink (`backend.uplink`) needs: its `rp_filter` is the machine's, but it must see the mark. */
export const UPLINK_SETTINGS: Readonly<Partial<Record<GatewaySettingKey, number>>> = { src_valid_mark: 1 };

/**
 * What the backend service itself re-asserts on the interfaces that exist,
 * whoever set the machine up: the ARP behaviour, and `src_valid_mark`, without
 * which its own fail-closed routing drops every forwarded packet under any
 * `rp_filter`. The rest (`rp_filter`, IPv6, forwarding) is `backend apply`'s.
 */
export const SERVICE_ASSERTED_KEYS: readonly GatewaySettingKey[] = [
  'src_valid_mark',
  'arp_ignore',
  'arp_announce',
  'arp_filter',
];

/** One interface's setting. */
export interface InterfaceSetting {
  readonly iface: string;
  readonly key: GatewaySettingKey;
  readonly value: number;
}

/** Each gateway interface's settings, in network order, then the uplink's. */
export function interfaceSettings(site: Pick<Site, 'networks' | 'backend'>): InterfaceSetting[] {
  return [
    ...site.networks.flatMap((n) =>
      GATEWAY_SETTING_KEYS.map((key) => ({ iface: n.gatewayInterface, key, value: GATEWAY_INTERFACE_SETTINGS[key] })),
    ),
    ...Object.entries(UPLINK_SETTINGS).map(([key, value]) => ({
      iface: site.backend.uplink,
      key: key as GatewaySettingKey,
      value: value as number,
    })),
  ];
}

/** {@link interfaceSettings} limited to {@link SERVICE_ASSERTED_KEYS}. */
export function serviceAssertedSettings(site: Pick<Site, 'networks' | 'backend'>): InterfaceSetting[] {
  return interfaceSettings(site).filter((s) => SERVICE_ASSERTED_KEYS.includes(s.key));
}

/** One setting: its key in `/`-separated form (interface names may hold dots) and its value. */
export interface SysctlSetting {
  /** e.g. `net/ipv4/conf/bond0.1081/rp_filter`; `sysctl -w` and sysctl.d accept this form. */
  readonly key: string;
  readonly value: number;
}

/** `net/ipv4/conf/<iface>/<key>` (`net/ipv6/...` for `disable_ipv6`). */
export function interfaceKey(iface: string, key: GatewaySettingKey): string {
  return `net/${key === 'disable_ipv6' ? 'ipv6' : 'ipv4'}/conf/${iface}/${key}`;
}

/** The file that holds a setting: `/proc/sys/<key>`. */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key}`;
}

/** Every setting the site's backend needs: forwarding, then each interface's ({@link interfaceSettings}). */
export function gatewaySysctls(site: Pick<Site, 'networks' | 'backend'>): SysctlSetting[] {
  return [IP_FORWARD, ...interfaceSettings(site).map((s) => ({ key: interfaceKey(s.iface, s.key), value: s.value }))];
}

/**
 * The value the kernel acts on for an interface, given `conf/all` and
 * `conf/<iface>` (Documentation/networking/ip-sysctl.rst): the larger for
 * `rp_filter`, `arp_ignore` and `arp_announce`; either set for `arp_filter`
 * and `src_valid_mark`; the interface's own for `disable_ipv6` (writing `all`
 * rewrites every interface's).
 */
export function effectiveSetting(key: GatewaySettingKey, all: number, iface: number): number {
  if (key === 'disable_ipv6') return iface;
  if (key === 'arp_filter' || key === 'src_valid_mark') return all !== 0 || iface !== 0 ? 1 : 0;
  return Math.max(all, iface);
}

/**
 * Whether the value the kernel acts on does what the gateway needs: the
 * wanted value, or for `arp_ignore` also 2 (stricter, and still answers for
 * the interface's own subnet); never `arp_ignore` 3 and up (8 answers nothing).
 */
export function settingHolds(key: GatewaySettingKey, effective: number): boolean {
  return key === 'arp_ignore' ? effective === 1 || effective === 2 : effective === GATEWAY_INTERFACE_SETTINGS[key];
}
