/**
 * The backend's view of this host's networks, as the flow planner needs it:
 * every registered NIC's address (`GET /v1/registrations`, this host's) and
 * each network's gateway MAC and groups (`GET /v1/networks/:name/peers`).
 * For `host plan|apply|flows|reconcile` and doctor. May not: change anything.
 */
import type { BackendClient } from '../../backend/api/client.js';
import type { NetworkView } from '../../portsec/intent.js';
import { API_PATHS, networkPeersPath, type PeersAnswer, type RegistrationsAnswer } from '../../protocol/api.js';

/**
 * Ask the backend about `networks`.
 *
 * @throws {BackendRequestError} `E_BACKEND_UNREACHABLE` or `E_BACKEND_REFUSED`.
 */
export async function fetchNetworkViews(
  client: BackendClient,
  networks: readonly string[],
): Promise<Map<string, NetworkView>> {
  const { registrations } = await client.call<RegistrationsAnswer>('GET', API_PATHS.registrations);
  const views = new Map<string, NetworkView>();
  for (const network of networks) {
    const peers = await client.call<PeersAnswer>('GET', networkPeersPath(network));
    views.set(network, {
      ips: new Map(registrations.filter((r) => r.network === network).map((r) => [r.mac, r.ip])),
      ...(peers.gatewayMac === undefined ? {} : { gatewayMac: peers.gatewayMac }),
      groups: peers.groups,
    });
  }
  return views;
}
