/**
 * The backend's records: what the store holds and what the firewall and
 * dnsmasq are rendered from. Plain data; validation happens at the API edge.
 */

/** A VM NIC registered by a host: it gets a DHCP reservation and, on an allow-list network, firewall elements. */
export interface Registration {
  /** The host that registered it (its token's host id). */
  readonly hostId: string;
  /** The libvirt domain UUID. */
  readonly vmUuid: string;
  /** The libvirt domain name (for logs only). */
  readonly vmName: string;
  /** Lower-case MAC of the NIC. */
  readonly mac: string;
  /** Site network name. */
  readonly network: string;
  /** The reserved IPv4 address. */
  readonly ip: string;
  /** Monotonic per-host event counter; an older generation never overrides a newer one. */
  readonly generation: number;
}

/** A transport protocol an allow entry may name. `any` covers every protocol (no port then). */
export type AllowProtocol = 'tcp' | 'udp' | 'icmp' | 'any';

/** An inclusive port range; a single port has `from === to`. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/**
 * One entry of a VM's egress allow-list: a destination by address (IPv4 or
 * CIDR) or by domain name, a protocol, and for tcp/udp an optional port range
 * (omitted: every port).
 */
export type AllowEntry =
  | {
      readonly type: 'address';
      /** IPv4 address or CIDR, e.g. `203.0.113.10` or `203.0.113.0/24`. */
      readonly address: string;
      readonly protocol: AllowProtocol;
      readonly ports?: PortRange;
    }
  | {
      readonly type: 'domain';
      /** A lower-case domain name; its addresses, as the backend's resolver learns them, are allowed. */
      readonly domain: string;
      readonly protocol: AllowProtocol;
      readonly ports?: PortRange;
    };

/** A VM's allow-list: keyed by VM UUID, applying to all its NICs on allow-list networks. */
export interface AllowList {
  readonly vmUuid: string;
  readonly entries: readonly AllowEntry[];
}
