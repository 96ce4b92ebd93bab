/**
 * What the backend machine's set-up looks like (as observed) and what to do
 * about it (actions). Plain data: `./observe.ts` fills {@link ObservedBackend},
 * `./plan.ts` turns it into {@link BackendAction}s, `./execute.ts` runs them.
 */
import type { IpLink } from '../../exec/ip-json.js';
import type { LinkAction } from '../../exec/link-actions.js';

/** The backend's systemd unit, as systemd and its unit directory show it. */
export interface ObservedUnit {
  /** The unit file's text (absent: not installed). */
  readonly text?: string;
  /** `systemctl is-enabled` said `enabled`. */
  readonly enabled: boolean;
}

/** Everything the backend planner needs to know. */
export interface ObservedBackend {
  /** Every link in the backend's network namespace, with `-d` details (kind, VLAN id, parent). */
  readonly links: readonly IpLink[];
  /** The sysctls read (`net/ipv4/ip_forward`, `net/ipv4/conf/<iface>/<key>`, `conf/all` too); absent keys are unreadable (no such interface). */
  readonly sysctls: Readonly<Record<string, number>>;
  /** The boot-time settings file's text (absent: not there). */
  readonly sysctlFile?: string;
  /** Whether NetworkManager runs (VLAN interfaces are then created through nmcli). */
  readonly networkManager: boolean;
  /** Whether systemd is the running init (`/run/systemd/system` exists). */
  readonly systemd: boolean;
  /** The unit (absent when the plan leaves the service alone: in a namespace, `--no-service`, or no systemd). */
  readonly unit?: ObservedUnit;
}

/**
 * What the executor can do. Every action is idempotent on its own. A gateway
 * VLAN interface is created with its address (`create-vlan-interface`'s
 * `address`: in the same NetworkManager connection; with `ip`, an `add-address` follows).
 */
export type BackendAction =
  | LinkAction
  | { readonly kind: 'add-address'; readonly interface: string; readonly address: string }
  | { readonly kind: 'remove-address'; readonly interface: string; readonly address: string; readonly reason: string }
  | { readonly kind: 'set-sysctl'; readonly key: string; readonly value: number; readonly was?: number }
  | {
      readonly kind: 'write-file';
      /** What the file is, for the operator: `boot-time sysctl settings`, `systemd unit`. */
      readonly what: string;
      readonly path: string;
      readonly text: string;
      readonly mode: number;
      readonly reason: 'missing' | 'differs';
    }
  | { readonly kind: 'reload-systemd' }
  | { readonly kind: 'enable-unit'; readonly unit: string }
  | {
      /** Something the planner will not do on its own; the operator must. Never executed. */
      readonly kind: 'blocked';
      readonly subject: string;
      readonly reason: string;
      readonly fix: string;
    };

/** The backend planner's options. */
export interface BackendPlanOptions {
  /** Files (`/etc/sysctl.d/`, `/etc/systemd/system/`) go under this root (default `/`). */
  readonly root?: string;
  /** The backend runs in this network namespace (tests, the demo): the machine-wide unit is left alone. */
  readonly netns?: string;
  /** Leave the systemd unit alone (another service manager runs the backend). */
  readonly noService?: boolean;
  /** The unit file's text to install (default: the package's `systemd/ticrypt-net-backend.service`). */
  readonly unitText?: string;
}
