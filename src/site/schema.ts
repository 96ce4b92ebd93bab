import { z } from 'zod';
import { AuditStoreSchema } from './audit-store.js';
import {
  BootFile,
  Duration,
  expect,
  FailClosedMark,
  HostName,
  InterfaceName,
  Ipv4,
  Ipv4Network,
  LeaseTime,
  Limit,
  Mac,
  Mtu,
  Name,
  Port,
  PortRangeText,
  VlanId,
} from './primitives.js';

/** The VM kinds tiCrypt knows; a site may add custom kinds that declare their policies. */
export const WELL_KNOWN_KINDS = ['secure', 'service', 'datain'] as const;

/** Egress policy: `allow-list` (only what each VM's allow-list names) or `open` (masqueraded). */
export const EgressPolicy = z.enum(['allow-list', 'open'], expect("'allow-list' or 'open'"));

/**
 * Who may register a network's NICs: `enforced` (only a host the VM launcher
 * placed the VM on) or `trust-hosts` (any host with a token).
 */
export const PlacementPolicy = z.enum(['enforced', 'trust-hosts'], expect("'enforced' or 'trust-hosts'"));

/** DNS policy: `controlled` (only allowed names resolve, only via the backend) or `open`. */
export const DnsPolicy = z.enum(['controlled', 'open'], expect("'controlled' or 'open'"));

/**
 * Which other VMs a VM may reach on its network (enforced on each host's OVS port):
 * - `all`: everything on the VLAN (flat L2; for clusters, Slurm);
 * - `gateway`: the gateway only, nothing from another VM reaches its port (the default on allow-list networks);
 * - `groups`: the gateway and the VMs of its own group (set per VM through the admin API), on any host.
 */
export const PeersPolicy = z.enum(['all', 'gateway', 'groups'], expect("'all', 'gateway' or 'groups'"));

/** IPv6 from a VM's port: `off` (dropped; the default: the backend serves no IPv6) or `link-local` (its EUI-64 fe80:: address only). */
export const Ipv6Policy = z.enum(['off', 'link-local'], expect("'off' or 'link-local'"));

/** What the backend records of a network's flows: `records` (one audit record per flow) or `counts` (counters only). */
export const AuditPolicy = z.enum(['records', 'counts'], expect("'records' or 'counts'"));

/**
 * How a network's VLAN reaches its bridge on a host.
 * - `vlan`: a kernel VLAN sub-interface of `parent` (e.g. `bond0.1081`) is a port of the bridge.
 * - `trunk`: `parent` carries the tagged VLANs into Open vSwitch as a trunk port.
 */
export const UplinkMode = z.enum(['vlan', 'trunk'], expect("'vlan' or 'trunk'"));

/** The shape of a network's uplink as written in a site file. */
export const UplinkSchema = z.strictObject(
  {
    parent: InterfaceName.default('bond0'),
    mode: UplinkMode.default('vlan'),
    interface: InterfaceName.optional(),
  },
  expect('a map with parent, mode and optionally interface'),
);

/**
 * A portgroup: a name a VM NIC may select on the network's bridge. Its VLAN
 * defaults to the network's and may not differ from it: the backend serves the
 * network (DHCP, gateway, DNS) on the network's VLAN only, and in vlan mode
 * nothing carries another VLAN off the host.
 */
export const PortgroupSchema = z.strictObject(
  {
    name: Name,
    vlan: VlanId.optional(),
    default: z.boolean(expect('true or false')).default(false),
  },
  expect('a map with name and optionally vlan and default'),
);

/** A fixed address for a known MAC, served by DHCP like a registered VM's. */
export const ReservationSchema = z.strictObject(
  {
    mac: Mac,
    ip: Ipv4,
    name: Name.optional(),
  },
  expect('a map with mac, ip and optionally name'),
);

/**
 * SSH access to a network's VMs through the backend: each registered NIC gets
 * a backend TCP port forwarded (nftables DNAT) to its port 22. On by default
 * on networks of kind `secure`; `enabled: false` turns it off, `enabled: true`
 * (or any field) turns it on elsewhere.
 */
export const SshSchema = z.strictObject(
  {
    enabled: z.boolean(expect('true or false')).optional(),
    ports: PortRangeText.default({ from: 22000, to: 54999 }),
    address: Ipv4.optional(),
    sources: z.array(Ipv4Network, expect('a list of IPv4 networks like 203.0.113.0/24')).default(['0.0.0.0/0']),
    quarantine: Duration.default(3_600_000),
  },
  expect('a map with enabled, ports, address, sources and quarantine'),
);

/** The shape of one network as written in a site file (after its preset, if any, is merged in). */
export const NetworkSchema = z.strictObject(
  {
    preset: z.enum(WELL_KNOWN_KINDS, expect("'secure', 'service' or 'datain'")).optional(),
    kind: Name,
    bridge: InterfaceName,
    vlan: VlanId,
    uplink: UplinkSchema.prefault({}),
    subnet: Ipv4Network,
    gateway: Ipv4,
    gatewayInterface: InterfaceName.optional(),
    dhcp: z.strictObject(
      {
        start: Ipv4,
        end: Ipv4,
        leaseTime: LeaseTime.default('12h'),
        bootFile: BootFile.optional(),
      },
      expect('a map with start, end and optionally leaseTime and bootFile'),
    ),
    mtu: Mtu.optional(),
    egress: EgressPolicy.optional(),
    dns: DnsPolicy.optional(),
    placement: PlacementPolicy.default('enforced'),
    peers: PeersPolicy.optional(),
    ipv6: Ipv6Policy.default('off'),
    audit: AuditPolicy.optional(),
    gatewayMac: Mac.optional(),
    portgroups: z.array(PortgroupSchema, expect('a list of portgroups')).default([]),
    reservations: z.array(ReservationSchema, expect('a list of reservations')).default([]),
    ssh: SshSchema.optional(),
  },
  expect('a map of network settings'),
);

/** The backend server: the only gateway of every VM network. */
export const BackendSchema = z.strictObject(
  {
    management: z
      .strictObject(
        {
          address: Ipv4.default('198.18.0.1'),
          port: Port.default(8443),
        },
        expect('a map with address and port'),
      )
      .prefault({}),
    uplink: InterfaceName.default('eth0'),
    trunk: InterfaceName.default('bond0'),
    upstreamDns: z.array(Ipv4, expect('a list of IPv4 addresses')).default([]),
    failClosedMark: FailClosedMark.default(0x10000000),
    auditStore: AuditStoreSchema.prefault({}),
    registrations: z
      .strictObject(
        {
          perHost: Limit().default(1024),
          perVm: Limit(64).default(8),
          expireAfter: Duration.default(600_000),
          expireGrace: Duration.default(600_000),
          tombstoneRetention: Duration.default(7 * 86_400_000),
        },
        expect('a map with perHost, perVm, expireAfter, expireGrace and tombstoneRetention'),
      )
      .prefault({}),
    api: z
      .strictObject(
        {
          requestsPerMinute: Limit().default(1200),
          unauthenticatedPerMinute: Limit().default(60),
        },
        expect('a map with requestsPerMinute and unauthenticatedPerMinute'),
      )
      .prefault({}),
    allowLists: z
      .strictObject(
        {
          entries: Limit(10_000).default(256),
          elementsPerEntry: Limit().default(256),
          elementsPerList: Limit().default(4096),
        },
        expect('a map with entries, elementsPerEntry and elementsPerList'),
      )
      .prefault({}),
  },
  expect('a map of backend settings'),
);

/** A KVM host of the site. */
export const HostSchema = z.strictObject({ uplink: InterfaceName.optional() }, expect('a map of host settings'));

/** The shape of a whole site file. `networks` omitted means the three presets. */
export const SiteSchema = z.strictObject(
  {
    name: Name.default('ticrypt'),
    backend: BackendSchema.prefault({}),
    hosts: z.record(HostName, HostSchema, expect('a map of host name to host settings')).default({}),
    networks: z.record(Name, z.unknown(), expect('a map of network name to network settings')).optional(),
  },
  expect('a map with name, backend, hosts and networks'),
);

/** A network as written (input side of {@link NetworkSchema}). */
export type NetworkInput = z.input<typeof NetworkSchema>;
/** A site as written (input side of {@link SiteSchema}). */
export type SiteInput = z.input<typeof SiteSchema>;
