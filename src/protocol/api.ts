/**
 * The backend API's wire format, one home for both ends: its paths, the
 * bodies hosts and admins send, the answers they get, and the records those
 * carry (a registration, an allow entry).
 *
 * For: the API (`src/backend/api/`), which validates bodies with
 * `./schemas.ts`; the host agent and the hooks (`src/hook/`), which build
 * bodies and read answers; the CLI and doctor, which call the API.
 * May not: import anything, or hold logic beyond spelling a path. The hook imports it with
 * `import type` only, so its esbuild bundle pays nothing for it; the paths are
 * also literal types, so a hook that writes a path the API does not serve
 * fails to compile.
 */

/** Every route of the API. `:uuid` is a VM's UUID. */
export const API_PATHS = {
  register: '/v1/register',
  deregister: '/v1/deregister',
  reconcile: '/v1/reconcile',
  registrations: '/v1/registrations',
  vmAllowList: '/v1/vms/:uuid/allow-list',
  vmPlacement: '/v1/vms/:uuid/placement',
  allowLists: '/v1/allow-lists',
  vmGroup: '/v1/vms/:uuid/group',
  networkPeers: '/v1/networks/:name/peers',
  sshForwards: '/v1/ssh',
  vmSsh: '/v1/vms/:uuid/ssh',
  vmSshSources: '/v1/vms/:uuid/ssh/sources',
  health: '/healthz',
  metrics: '/metrics',
} as const;

/** The API's routes by name, each as its literal type. */
export type ApiPaths = typeof API_PATHS;

/**
 * The path of one VM's allow-list.
 *
 * @example vmAllowListPath('0b1d2c3e-0000-4000-8000-000000000007') // '/v1/vms/0b1d2c3e-.../allow-list'
 */
export function vmAllowListPath(vmUuid: string): string {
  return API_PATHS.vmAllowList.replace(':uuid', encodeURIComponent(vmUuid));
}

/**
 * The path of one VM's placement.
 *
 * @example vmPlacementPath('0b1d2c3e-0000-4000-8000-000000000007') // '/v1/vms/0b1d2c3e-.../placement'
 */
export function vmPlacementPath(vmUuid: string): string {
  return API_PATHS.vmPlacement.replace(':uuid', encodeURIComponent(vmUuid));
}

/**
 * The path of one VM's group.
 *
 * @example vmGroupPath('0b1d2c3e-0000-4000-8000-000000000007') // '/v1/vms/0b1d2c3e-.../group'
 */
export function vmGroupPath(vmUuid: string): string {
  return API_PATHS.vmGroup.replace(':uuid', encodeURIComponent(vmUuid));
}

/**
 * The path of a network's peers (what hosts pin VM ports by).
 *
 * @example networkPeersPath('secure') // '/v1/networks/secure/peers'
 */
export function networkPeersPath(network: string): string {
  return API_PATHS.networkPeers.replace(':name', encodeURIComponent(network));
}

/**
 * The path of one VM's SSH access (its forwards and sources).
 *
 * @example vmSshPath('0b1d2c3e-0000-4000-8000-000000000007') // '/v1/vms/0b1d2c3e-.../ssh'
 */
export function vmSshPath(vmUuid: string): string {
  return API_PATHS.vmSsh.replace(':uuid', encodeURIComponent(vmUuid));
}

/** The path of the client networks one VM's SSH access is narrowed to. */
export function vmSshSourcesPath(vmUuid: string): string {
  return API_PATHS.vmSshSources.replace(':uuid', encodeURIComponent(vmUuid));
}

/** A VM NIC as a host reports it (`POST /v1/register`, `POST /v1/reconcile`). */
export interface NicBody {
  /** The libvirt domain UUID (lower case). */
  readonly vmUuid: string;
  /** The VM name, for logs only: 1-128 of `A-Za-z0-9_.+:@-`. */
  readonly vmName: string;
  /** Lower-case MAC. */
  readonly mac: string;
  /** The site network (the hook's managed network of the same name). */
  readonly network: string;
}

/**
 * The migration marker of a register: `incoming` says the sending host is the
 * destination of a live migration of the VM (libvirt ran its `migrate` hook):
 * the guest is paused there and may still run on the host that holds the NIC.
 */
export type MigrationMarker = 'incoming';

/** `POST /v1/register`. */
export interface RegisterBody extends NicBody {
  /** The host's event counter; an older generation never overrides a newer one. */
  readonly generation: number;
  /**
   * `incoming`: the host is a live migration's destination. A NIC another
   * host holds is then not taken over: the sender is recorded as its incoming
   * host, and the holder's stop hands it over (answer status `incoming`).
   */
  readonly migration?: MigrationMarker | undefined;
}

/** `POST /v1/deregister`. */
export interface DeregisterBody {
  readonly mac: string;
  readonly network: string;
  readonly generation: number;
}

/** `POST /v1/reconcile`: every managed NIC running on the host now. */
export interface ReconcileBody {
  readonly generation: number;
  readonly nics: readonly NicBody[];
}

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
  /**
   * The NIC's id, 1 to 0xfffffe, unique among registrations and not reused
   * soon: the key of its firewall elements and the `ct mark` of the flows the
   * table accepts for it. Kept when another host takes the registration over
   * (migration); a new one after a deregistration.
   */
  readonly nicId: number;
  /**
   * A live migration under way: the destination host that registered the
   * NIC with the `incoming` marker. `hostId` still holds the NIC; its stop
   * (or reconcile without it, or a placement without it) hands the NIC to
   * this host, the incoming host's stop withdraws it.
   */
  readonly incomingHost?: string;
  /** The generation of the incoming host's marked register (orders its later events). */
  readonly incomingGeneration?: number;
}

/** The answer to `POST /v1/register`. */
export interface RegisterAnswer {
  /**
   * `registered`: stored now; `unchanged`: it already was; `stale`: older than what the backend holds, ignored;
   * `incoming`: (a register with the migration marker) another host holds the NIC and keeps it until its stop, the
   * sender is recorded as the incoming host; the address and SSH mapping are the NIC's, pin with them.
   */
  readonly status: 'registered' | 'unchanged' | 'stale' | 'incoming';
  /** The reserved address (absent when a stale register found no registration). */
  readonly ip?: string;
  /** The gateway's MAC on this network, which hosts pin VM ports to (absent when the backend cannot tell). */
  readonly gatewayMac?: string;
  readonly network: string;
  readonly mac: string;
  /** SSH access through the backend, on a network that has it: `ssh -p PORT user@ADDRESS` reaches the NIC's port 22. */
  readonly ssh?: SshMapping;
}

/** Where a NIC's port 22 is reached through the backend. */
export interface SshMapping {
  /** The backend's TCP port forwarded to the NIC's port 22. */
  readonly port: number;
  /** The backend address clients connect to; absent: any of the backend's own addresses (its uplink's). */
  readonly address?: string;
}

/** One NIC's SSH forward, as the API lists it. */
export interface SshForwardAnswer extends SshMapping {
  readonly vmUuid: string;
  readonly vmName: string;
  readonly network: string;
  readonly mac: string;
  /** The NIC's address: the forward's target is its port 22. */
  readonly ip: string;
  /** The client networks that may connect: the network's, or the VM's narrowing of them. */
  readonly sources: readonly string[];
  /** Whether an admin narrowed the VM's client networks. */
  readonly narrowed: boolean;
}

/** The answer to `GET /v1/ssh`: every forward (admin), or those of the host's registrations (host). */
export interface SshForwardsAnswer {
  readonly forwards: readonly SshForwardAnswer[];
}

/** `PUT /v1/vms/:uuid/ssh/sources`: the client networks the VM's SSH access is narrowed to (empty: no client). */
export interface SshSourcesBody {
  readonly sources: readonly string[];
}

/** The answer to `GET /v1/vms/:uuid/ssh` (and to setting or resetting its sources). */
export interface VmSshAnswer {
  readonly vmUuid: string;
  /** The client networks an admin narrowed the VM to; `null`: each network's site sources. */
  readonly sources: readonly string[] | null;
  /** The VM's registered NICs' forwards. */
  readonly forwards: readonly SshForwardAnswer[];
}

/** The answer to `POST /v1/deregister`. */
export interface DeregisterAnswer {
  /**
   * `removed`; `absent` (nothing to remove); `kept-other-host` (another host
   * holds it: migration); `kept-newer` (its generation is newer than the request's);
   * `moved` (the host held it and a live migration's incoming host was recorded: the NIC is
   * now that host's, nothing revoked); `withdrawn` (the host was the incoming host of a
   * migration that did not complete: that record is gone, the holder keeps the NIC).
   * Only `removed` takes anything away.
   */
  readonly status: 'removed' | 'absent' | 'kept-other-host' | 'kept-newer' | 'moved' | 'withdrawn';
}

/** The answer to `POST /v1/reconcile`. */
export interface ReconcileAnswer {
  readonly added: readonly Registration[];
  readonly removed: readonly Registration[];
  /** NICs refused because another VM holds their MAC. */
  readonly conflicts: readonly NicBody[];
  /**
   * NICs left out because the VM is not placed on the host (`E_NOT_PLACED`), a cap is reached
   * (`E_QUOTA_EXCEEDED`), or their network's SSH access has no port for them (`E_SSH_PORTS_EXHAUSTED`,
   * `E_SSH_PORT_IN_USE`).
   */
  readonly refused: readonly (NicBody & {
    readonly code: 'E_NOT_PLACED' | 'E_QUOTA_EXCEEDED' | 'E_SSH_PORTS_EXHAUSTED' | 'E_SSH_PORT_IN_USE';
  })[];
  /** NICs another host holds: a reconcile never takes a registration over (only an edge register may). */
  readonly heldElsewhere: readonly NicBody[];
}

/** `PUT /v1/vms/:uuid/placement`: the hosts the VM may run on (empty: none). */
export interface PlacementBody {
  readonly hosts: readonly string[];
}

/** The answer to `GET /v1/vms/:uuid/placement`. */
export interface PlacementAnswer {
  readonly vmUuid: string;
  /** The hosts that may register the VM's NICs (empty: none). */
  readonly hosts: readonly string[];
}

/** The answer to `PUT /v1/vms/:uuid/placement`: the placement, and how many registrations of hosts left out were revoked. */
export interface SetPlacementAnswer extends PlacementAnswer {
  readonly revoked: number;
}

/** Every refusal: a 4xx (or 5xx) with this body, and nothing changed. */
export interface ErrorAnswer {
  readonly error: {
    /** Stable code, e.g. `E_REQUEST_INVALID`, `E_MAC_CONFLICT`. */
    readonly code: string;
    readonly message: string;
    /** Per-field issues of an invalid request. */
    readonly issues?: readonly { readonly path: string; readonly message: string }[];
  };
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
 * (omitted: every port). The form the backend stores, renders into nftables
 * and the admin API carries; {@link AllowEntryBody} is its JSON form.
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
      /**
       * A lower-case domain name (`pypi.org`: that name only) or a wildcard
       * (`*.example.org`: every name below example.org, not example.org
       * itself). The VM may resolve it through the backend's DNS front, and
       * each answer opens the addresses it names, for a while.
       */
      readonly domain: string;
      readonly protocol: AllowProtocol;
      readonly ports?: PortRange;
      /**
       * Special-use ranges (private, loopback, link-local, CGNAT, reserved,
       * documentation, ...) this name's answers may open, as IPv4 addresses or
       * CIDRs. An answered address in a special-use range outside these opens
       * nothing and is left out of the answer (no DNS rebinding into private
       * space). Default: none.
       */
      readonly specialRanges?: readonly string[];
    };

/** A VM's allow-list: keyed by VM UUID, applying to all its NICs on allow-list networks. */
export interface AllowList {
  readonly vmUuid: string;
  readonly entries: readonly AllowEntry[];
}

/**
 * An allow entry on the wire: `{ address | domain, protocol, ports?, specialRanges? }`,
 * ports as `443` or `'8000-8100'`, `specialRanges` only on a domain entry.
 */
export interface AllowEntryBody {
  readonly address?: string;
  readonly domain?: string;
  readonly protocol: string;
  readonly ports?: number | string;
  readonly specialRanges?: readonly string[];
}

/** `PUT /v1/vms/:uuid/allow-list`. */
export interface AllowListBody {
  readonly entries: readonly AllowEntryBody[];
}

/** The answer to `PUT|GET /v1/vms/:uuid/allow-list`. */
export interface AllowListAnswer {
  readonly vmUuid: string;
  readonly entries: readonly AllowEntryBody[];
}

/** The answer to `GET /v1/allow-lists`. */
export interface AllowListsAnswer {
  readonly allowLists: readonly AllowListAnswer[];
}

/** The answer to `GET /v1/registrations`. */
export interface RegistrationsAnswer {
  readonly registrations: readonly Registration[];
}

/** `PUT /v1/vms/:uuid/group`: the VM's group on `groups` networks (`null`: none, it reaches the gateway only). */
export interface VmGroupBody {
  readonly group: string | null;
}

/** The answer to `PUT|GET /v1/vms/:uuid/group`. */
export interface VmGroupAnswer {
  readonly vmUuid: string;
  readonly group: string | null;
}

/** A group as hosts see it: its id (1-2^32-1, stable per name), name and members on one network. */
export interface PeerGroup {
  readonly id: number;
  readonly name: string;
  /** Every registered NIC of the group's VMs on the network, on any host. */
  readonly members: readonly { readonly mac: string; readonly ip: string }[];
}

/** The answer to `GET /v1/networks/:name/peers` (host token): what the asking host pins its VM ports by. */
export interface PeersAnswer {
  readonly network: string;
  /** The gateway's MAC (absent when the backend cannot tell: then VMs cannot unicast to it). */
  readonly gatewayMac?: string;
  /** The groups with a VM registered on this network by the asking host. */
  readonly groups: readonly PeerGroup[];
}
