/**
 * What the nftables renderers take besides the site: the backend's current
 * state as the store holds it, and rendering options.
 */
import type { AllowList, Registration } from '../../protocol/api.js';

/** A backend TCP port forwarded to a VM's port 22 (SSH access). */
export interface SshForward {
  /** The backend's TCP port, 1-65535. */
  readonly port: number;
  /** The VM's address. */
  readonly ip: string;
}

/** Everything the table's elements are rendered from: the store's contents. */
export interface GatewayState {
  readonly registrations: readonly Registration[];
  /** Allow-lists by VM; a registered VM without one has no egress. */
  readonly allowLists: readonly AllowList[];
  readonly sshForwards?: readonly SshForward[];
}

/** Options of the full ruleset. */
export interface RulesetOptions {
  /** Log dropped packets with the `ticrypt` prefix, rate-limited. Default `false`. */
  readonly log?: boolean;
  /** The log rate limit, e.g. `10/second` (default) or `60/minute`. */
  readonly logRate?: string;
}
