/**
 * The validated, fully resolved site: every default filled in, every
 * cross-field rule checked. Everything downstream (XML, nftables, dnsmasq,
 * OVS) takes these types and nothing looser.
 */

import type { AuditStoreSettings } from './audit-store.js';

/** How a network's VLAN reaches its bridge on a host (see `UplinkMode`). */
export interface Uplink {
  /** The physical parent interface, e.g. `bond0`. */
  readonly parent: string;
  /** `vlan`: a VLAN sub-interface is the bridge port; `trunk`: the parent is an OVS trunk port. */
  readonly mode: 'vlan' | 'trunk';
  /** The interface that becomes the bridge's uplink port: `bond0.1081` in vlan mode, the parent in trunk mode. */
  readonly interface: string;
}

/** A named group on a network's bridge that a NIC may select. */
export interface Portgroup {
  readonly name: string;
  /** Always the network's VLAN (validation refuses another: nothing would serve it). */
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

/**
 * SSH access to a network's VMs through the backend: each registered NIC gets
 * one backend TCP port of `ports`, forwarded (nftables DNAT) to its port 22.
 */
export interface SshAccess {
  /** The backend's TCP ports handed out, one per registered NIC (default 22000-54999). */
  readonly ports: { readonly from: number; readonly to: number };
  /**
   * The backend address clients connect to (on the uplink); absent: any of the
   * backend's own addresses.
   */
  readonly address?: string;
  /** The client networks allowed (default `0.0.0.0/0`); an admin narrows them per VM. */
  readonly sources: readonly string[];
  /** A released port goes to no other NIC for this many ms (default 1 h). */
  readonly quarantine: number;
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
  /**
   * Who may register this network's NICs: `enforced` (default), only a host
   * the VM launcher placed the VM on (`PUT /v1/vms/:uuid/placement`);
   * `trust-hosts`, any host with a token.
   */
  readonly placement: 'enforced' | 'trust-hosts';
  /**
   * Which other VMs a VM reaches, enforced on the hosts' OVS ports: `all` (flat L2), `gateway` (only the
   * gateway; the default on allow-list networks), `groups` (the gateway and its own group's VMs).
   */
  readonly peers: 'all' | 'gateway' | 'groups';
  /** IPv6 from VM ports: `off` (default) or `link-local` (each VM's EUI-64 fe80:: address; with `peers: all` only). */
  readonly ipv6: 'off' | 'link-local';
  /**
   * Flow audit: `records` (an audit record per accepted flow, rate-limited records of refused ones; the default
   * on allow-list networks, and only there: flows are told apart by their NIC's id) or `counts` (counters only;
   * the default on open networks).
   */
  readonly audit: 'records' | 'counts';
  /** The gateway's MAC as hosts pin it; default: read by the backend from `gatewayInterface` (set it for a VRRP MAC). */
  readonly gatewayMac?: string;
  readonly portgroups: readonly Portgroup[];
  readonly reservations: readonly Reservation[];
  /** SSH access through the backend; absent: off (the default except on kind `secure`). */
  readonly ssh?: SshAccess;
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
  /**
   * The packet mark bit (one of bits 24-31; default 0x10000000) that
   * `table inet ticrypt` sets on traffic it lets in from the VM networks and
   * the uplink; policy routing blackholes forwarded VM traffic without it, so
   * nothing forwards while the table is absent.
   */
  readonly failClosedMark: number;
  /** Where the audit records are kept, rotated and removed (`backend.auditStore`). */
  readonly auditStore: AuditStoreSettings;
  readonly registrations: RegistrationLimits;
  readonly api: ApiLimits;
  readonly allowLists: AllowListLimits;
}

/** Limits on what hosts may register, and how long registrations and tombstones live. */
export interface RegistrationLimits {
  /** Registrations one host may hold at once (default 1024). */
  readonly perHost: number;
  /** NICs one VM may have registered at once (default 8). */
  readonly perVm: number;
  /** A host's registrations expire when it has not reconciled for this many ms (default 10 min). */
  readonly expireAfter: number;
  /** After the service starts, no registration expires for this many ms (default 10 min). */
  readonly expireGrace: number;
  /** Deregistration tombstones are kept this many ms (default 7 days). */
  readonly tombstoneRetention: number;
}

/** Request rate limits of the backend API, per token (or per client address without a valid token). */
export interface ApiLimits {
  /** Requests per minute per valid token (default 1200). */
  readonly requestsPerMinute: number;
  /** Requests per minute per client address without a valid token (default 60). */
  readonly unauthenticatedPerMinute: number;
}

/** Caps on allow-lists, checked before anything changes. */
export interface AllowListLimits {
  /** Entries per VM allow-list (default 256). */
  readonly entries: number;
  /** Set elements one entry may expand to (default 256). */
  readonly elementsPerEntry: number;
  /** Set elements one allow-list may expand to, per NIC (default 4096). */
  readonly elementsPerList: number;
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
