/**
 * The host agent's event: register or deregister one NIC at one generation,
 * with the cause for logs, and the keys and wording every module shares for a
 * NIC. Plain data. May not: do I/O.
 */
import type { NicBody } from '../../protocol/api.js';

/** A NIC as the hook reports it to the backend: the wire's NIC (its `vmName` made API-safe by `apiVmName`). */
export type HookNic = NicBody;

/** One event for the backend: register or deregister one NIC, at one generation. */
export interface HookEvent {
  readonly op: 'register' | 'deregister';
  readonly generation: number;
  readonly nic: HookNic;
  /** What caused it, for logs: `qemu start`, `network port-deleted`, ... */
  readonly cause: string;
  /** A register of a live migration's destination (see the API's `RegisterBody.migration`). */
  readonly migration?: 'incoming';
}

/** The key events of one NIC share: they must reach the backend in generation order. */
export function nicKey(nic: { readonly network: string; readonly mac: string }): string {
  return `${nic.network}/${nic.mac}`;
}

/** `vm=NAME mac=MAC network=NET`: how every log line names a NIC. */
export function describeNic(nic: HookNic): string {
  return `vm=${nic.vmName} mac=${nic.mac} network=${nic.network}`;
}
