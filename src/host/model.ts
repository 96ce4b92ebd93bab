/**
 * What a host's networking looks like (as observed) and what to do about it
 * (actions). Plain data: the observer fills {@link ObservedHost}, the planner
 * turns it into {@link Action}s, the executor runs them.
 */
import type { IpLink } from '../exec/ip-json.js';
import type { LinkAction } from '../exec/link-actions.js';

export type { VlanMethod } from '../exec/link-actions.js';
import type { FlowObservation } from '../portsec/dump.js';
import type { NetworkView } from '../portsec/intent.js';
import type { FlowAction } from '../portsec/plan.js';
import type { BridgePolicy } from '../portsec/policy.js';

/** The OVS `external_ids` key and value that mark what ticrypt-net created. */
export const MANAGED_KEY = 'ticrypt-net';
/** See {@link MANAGED_KEY}. */
export const MANAGED_VALUE = 'managed';

/** One OVS port with its single interface. */
export interface ObservedPort {
  readonly name: string;
  readonly bridge: string;
  /** Access VLAN (`tag`), absent when none. */
  readonly tag?: number;
  /** Trunk VLANs, sorted; empty when none. */
  readonly trunks: readonly number[];
  readonly vlanMode?: string;
  /** The port's `external_ids`. */
  readonly externalIds: Readonly<Record<string, string>>;
  /** The interface's type: `''` (system), `internal`, `patch`, ... */
  readonly type: string;
  /** The interface's `options` (a patch port's `peer`). */
  readonly options: Readonly<Record<string, string>>;
  /** The interface's `external_ids` (`iface-id` on VM ports). */
  readonly interfaceExternalIds: Readonly<Record<string, string>>;
  /** The interface's OpenFlow port number (absent when it has none, e.g. its device is missing: OVS says -1). */
  readonly ofport?: number;
}

/** One OVS bridge. */
export interface ObservedBridge {
  readonly name: string;
  readonly datapathType: string;
  readonly externalIds: Readonly<Record<string, string>>;
  /** `secure` or `standalone`; absent when unset (OVS then acts as standalone). */
  readonly failMode?: string;
}

/** A kernel network interface, as `ip -j addr` shows it. */
export type ObservedLink = IpLink;

/** A libvirt network as virsh shows it. */
export interface ObservedNetwork {
  readonly name: string;
  readonly active: boolean;
  readonly autostart: boolean;
  readonly persistent: boolean;
  /** `virsh net-dumpxml --inactive`: the persistent definition. */
  readonly xml: string;
  /** Ports in use (`connections='N'` of the live XML); 0 when inactive. */
  readonly connections: number;
}

/** Everything the planner needs to know about one host. */
export interface ObservedHost {
  /** Whether `ovs-vsctl` could talk to ovsdb-server. */
  readonly ovsRunning: boolean;
  readonly bridges: readonly ObservedBridge[];
  readonly ports: readonly ObservedPort[];
  readonly links: readonly ObservedLink[];
  /** The libvirt networks the site names (others are not observed). */
  readonly networks: readonly ObservedNetwork[];
  /** Whether NetworkManager runs (VLAN interfaces are then created through nmcli). */
  readonly networkManager: boolean;
  /** Port security's flows, when observed (the host has a hook configuration to ask the backend with). */
  readonly flows?: ObservedFlows;
}

/** A bridge whose flows are planned, and the backend network its VMs are registered on. */
export interface FlowTarget {
  readonly bridge: string;
  readonly network: string;
}

/** What the flow planner needs: the bridges, what each holds, and what the backend says. */
export interface ObservedFlows {
  readonly targets: readonly FlowTarget[];
  /** Each target bridge's flows of ours (dumped whole: stamps and counts). */
  readonly bridges: ReadonlyMap<string, FlowObservation>;
  /** The backend's view by network, or why it could not be had. */
  readonly view: ReadonlyMap<string, NetworkView> | { readonly error: string };
}

/** What the executor can do. Every action is idempotent on its own. */
export type Action =
  | LinkAction
  | {
      readonly kind: 'create-bridge';
      readonly bridge: string;
      readonly datapathType: string;
      /** A network bridge's port-security policy, set in the same call (with fail_mode=secure). */
      readonly policy?: BridgePolicy;
    }
  | {
      /** fail_mode=secure and the policy in external_ids, on an existing network bridge. */
      readonly kind: 'set-bridge-policy';
      readonly bridge: string;
      readonly policy: BridgePolicy;
      /** What differs, for the operator. */
      readonly differences: readonly string[];
    }
  | FlowAction
  | {
      readonly kind: 'add-port';
      readonly bridge: string;
      readonly port: string;
      readonly tag?: number;
      readonly trunks: readonly number[];
      /** A patch port's peer (the port is then `type=patch`). */
      readonly peer?: string;
    }
  | {
      readonly kind: 'set-port-vlan';
      readonly port: string;
      readonly tag?: number;
      readonly trunks: readonly number[];
      /** What the port has now, for the operator. */
      readonly was: { readonly tag?: number; readonly trunks: readonly number[] };
    }
  | { readonly kind: 'remove-port'; readonly bridge: string; readonly port: string; readonly reason: string }
  | {
      readonly kind: 'define-network';
      readonly network: string;
      readonly xml: string;
      /** `missing`: not defined yet; `differs`: redefined (destroyed and undefined first). */
      readonly reason: 'missing' | 'differs';
      /** What differs, for the operator (only when `reason` is `differs`). */
      readonly differences: readonly string[];
      /** For `differs`: whether it was running (it is destroyed first, then started again). */
      readonly wasActive: boolean;
    }
  | { readonly kind: 'start-network'; readonly network: string }
  | { readonly kind: 'autostart-network'; readonly network: string }
  | {
      /** Something the planner will not do on its own; the operator must. Never executed. */
      readonly kind: 'blocked';
      readonly subject: string;
      readonly reason: string;
      readonly fix: string;
    };

/** The planner's options. */
export interface PlanOptions {
  /** `datapath_type` of bridges it creates: `system` in production (default), `netdev` with the userspace datapath. */
  readonly datapathType?: string;
  /** The shared bridge that holds the parent of trunk-mode networks (default `br-uplink`). */
  readonly uplinkBridge?: string;
}

/** The default shared uplink bridge of trunk-mode networks. */
export const DEFAULT_UPLINK_BRIDGE = 'br-uplink';
