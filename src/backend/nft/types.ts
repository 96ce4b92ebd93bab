/**
 * What the nftables renderers take besides the site: the backend's current
 * state as the store holds it, and rendering options.
 */
import type { AllowList, Registration } from '../../protocol/api.js';
import type { NicSsh } from './ssh.js';
import type { AuditRuleOptions } from './audit.js';

/** A registered NIC's SSH access (a backend port forwarded to its port 22), by network and MAC. */
export interface SshForward extends NicSsh {
  readonly network: string;
  readonly mac: string;
}

/** Everything the table's elements are rendered from: the store's contents. */
export interface GatewayState {
  readonly registrations: readonly Registration[];
  /** Allow-lists by VM; a registered VM without one has no egress. */
  readonly allowLists: readonly AllowList[];
  /** The SSH access of registered NICs (each NIC's at most once); a NIC not named has none. */
  readonly ssh?: readonly SshForward[];
}

/** Options of the full ruleset. */
export interface RulesetOptions {
  /** Log dropped packets with the `ticrypt` prefix, rate-limited. Default `false`. */
  readonly log?: boolean;
  /** The log rate limit, e.g. `10/second` (default) or `60/minute`. */
  readonly logRate?: string;
  /** Flow audit (admission bits in `ct mark`, refusals to NFLOG); absent: the table carries no audit rules. */
  readonly audit?: AuditRuleOptions;
}
