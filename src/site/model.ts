/**
 * The validated, fully resolved site: every default filled in, every
 * cross-field rule checked. Everything downstream (XML, nftables, dnsmasq,
 * OVS) takes these types and nothing looser.
 */

/** How a network's VLAN reaches its bridge on a host (see `UplinkMode`). */
export interface Uplink {
  /** The physical parent interface, e.g. `bond0`. */
  readonly parent: string;
  /** `vlan`: a VLAN sub-interface is the bridge port; `trunk`: the parent is an OVS trunk port. */
  readonly mode: 'vlan' | 'trunk';
  /** The interface that becomes the bridge's uplink port: `bond0.1081` in vlan mode, the parent in trunk mode. */
  readonly interface: string;
}

/** A named VLAN on a network's bridge that a NIC may select. */
export interface Portgroup {
  readonly name: string;
  readonly vlan: number;
  readonly default: boolean;
}

/** A fixed DHCP address for a MAC. */
export interface Reservation {
  /** Lower-case MAC. */
  readonly mac: string;
  readonly ip: string;
  readonly name?: string;
}

/** The DHCP pool of a network. */
export interface DhcpRange {
  readonly start: string;
  readonly end: string;
  /** dnsmasq lease time (`12h`, `infinite`, ...). */
  readonly leaseTime: string;
  /** Number of addresses in the range; dnsmasq's `dhcp-lease-max` must be at least this. */
  readonly size: number;
  /** What PXE clients (e.g. a VM's iPXE) are told to boot: a file or an http URL (`dhcp-boot`). */
  readonly bootFile?: string;
}

/** One VM network: an OVS bridge per host on its own VLAN, reaching the backend. */
export interface Network {
  /** libvirt network name, also the key in the site file. */
  readonly name: string;
  /** `secure`, `service`, `datain`, or a custom kind. */
  readonly kind: string;
  /** OVS bridge name on every host. */
  readonly bridge: string;
  /** The VLAN id VM ports are tagged with. */
  readonly vlan: number;
  readonly uplink: Uplink;
  /** IPv4 CIDR. */
  readonly subnet: string;
  /** The backend's address on this network; the VMs' router and DNS server. */
  readonly gateway: string;
  /** The backend's interface on this network (default `<backend.trunk>.<vlan>`). */
  readonly gatewayInterface: string;
  readonly dhcp: DhcpRange;
  readonly mtu?: number;
  readonly egress: 'allow-list' | 'open';
  readonly dns: 'controlled' | 'open';
  readonly portgroups: readonly Portgroup[];
  readonly reservations: readonly Reservation[];
}

/** The backend server's settings. */
export interface Backend {
  /** Where the allow-list API listens: never on a VM network. */
  readonly management: { readonly address: string; readonly port: number };
  /** The backend's way out, where VM egress is masqueraded. */
  readonly uplink: string;
  /** Parent of the backend's VLAN interfaces. */
  readonly trunk: string;
  /** Resolvers the backend forwards allowed names (and open networks' queries) to. */
  readonly upstreamDns: readonly string[];
}

/** A KVM host. */
export interface Host {
  readonly name: string;
  /** Overrides every network's `uplink.parent` on this host. */
  readonly uplink?: string;
}

/** A whole validated site. */
export interface Site {
  /** Site name; seeds the libvirt network UUIDs. */
  readonly name: string;
  readonly backend: Backend;
  readonly hosts: readonly Host[];
  /** Networks in the order the site file lists them. */
  readonly networks: readonly Network[];
}
