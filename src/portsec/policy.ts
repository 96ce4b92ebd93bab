/**
 * A bridge's port-security policy as it lives on the host: `host apply` writes
 * it from the site into the bridge's OVS `external_ids`, and the hook and the
 * host sync read it from there (the hook reads no site file). Pure. May not:
 * read or write OVS.
 */
import type { Ipv6Policy, PeersPolicy } from './render.js';
import { isIpv4 } from '../site/address.js';
import { isInterfaceName, NAME_PATTERN } from '../site/predicates.js';

/** The `external_ids` keys of a bridge's policy. */
export const POLICY_KEYS = {
  /** The site network the bridge carries (the backend's network name). */
  network: 'ticrypt-net-network',
  peers: 'ticrypt-net-peers',
  ipv6: 'ticrypt-net-ipv6',
  /** The gateway's address (VMs' ARP for it passes). */
  gateway: 'ticrypt-net-gateway',
  /** The port that carries the network's VLAN towards the gateway. */
  uplink: 'ticrypt-net-uplink',
} as const;

/** A bridge's port-security policy. */
export interface BridgePolicy {
  readonly network: string;
  readonly peers: PeersPolicy;
  readonly ipv6: Ipv6Policy;
  readonly gateway: string;
  /** The uplink port's name. */
  readonly uplink: string;
}

/** The `external_ids` that carry a policy. */
export function policyExternalIds(policy: BridgePolicy): Record<string, string> {
  return {
    [POLICY_KEYS.network]: policy.network,
    [POLICY_KEYS.peers]: policy.peers,
    [POLICY_KEYS.ipv6]: policy.ipv6,
    [POLICY_KEYS.gateway]: policy.gateway,
    [POLICY_KEYS.uplink]: policy.uplink,
  };
}

/**
 * The policy a bridge's `external_ids` carry; `undefined` when they carry none
 * (the bridge has no port security), or a one-line reason when they carry a
 * broken one (then nothing is pinned on it: the operator re-runs host apply).
 */
export function policyOf(externalIds: Readonly<Record<string, string>>): BridgePolicy | string | undefined {
  const get = (key: keyof typeof POLICY_KEYS) => externalIds[POLICY_KEYS[key]];
  if (Object.values(POLICY_KEYS).every((key) => externalIds[key] === undefined)) return undefined;
  const network = get('network');
  const peers = get('peers');
  const ipv6 = get('ipv6');
  const gateway = get('gateway');
  const uplink = get('uplink');
  if (network === undefined || !NAME_PATTERN.test(network)) return `bad ${POLICY_KEYS.network}`;
  if (peers !== 'all' && peers !== 'gateway' && peers !== 'groups') return `bad ${POLICY_KEYS.peers}`;
  if (ipv6 !== 'off' && ipv6 !== 'link-local') return `bad ${POLICY_KEYS.ipv6}`;
  if (gateway === undefined || !isIpv4(gateway)) return `bad ${POLICY_KEYS.gateway}`;
  if (uplink === undefined || !isInterfaceName(uplink)) return `bad ${POLICY_KEYS.uplink}`;
  return { network, peers, ipv6, gateway, uplink };
}
