/**
 * The API's port-security routes: what hosts pin VM ports by
 * (`GET /v1/networks/:name/peers`, host token: the gateway's MAC and the
 * groups with a VM of the asking host on that network) and each VM's group
 * (`PUT|GET /v1/vms/:uuid/group`, admin token). Nothing here touches the
 * firewall: groups only decide what the hosts' flows let between VMs. May
 * not: enforce anything, or answer another host's groups.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors/api-error.js';
import { API_PATHS, type PeersAnswer, type VmGroupAnswer } from '../../protocol/api.js';
import { NetworkParams, VmGroupBody, VmParams } from '../../protocol/schemas.js';
import type { GatewayMacs } from '../gateway-macs.js';
import type { Store } from '../store/store.js';
import { authenticate } from './auth.js';
import { parseRequest } from './parse.js';

/** What the port-security routes serve from. */
export interface PortSecurityRouteOptions {
  readonly store: Store;
  /** The site's network names (anything else is refused). */
  readonly networks: readonly string[];
  readonly gatewayMac: GatewayMacs;
  /** One audit line per group change. */
  readonly audit?: (event: {
    event: 'group';
    actor: string;
    vmUuid: string;
    before: string | null;
    after: string | null;
  }) => void;
}

/** Add the port-security routes to the API. */
export function addPortSecurityRoutes(app: FastifyInstance, options: PortSecurityRouteOptions): void {
  const { store } = options;

  app.get(API_PATHS.networkPeers, async (request): Promise<PeersAnswer> => {
    const host = authenticate(request, store.tokens, 'host');
    const { name } = parseRequest(NetworkParams, request.params, 'params');
    if (!options.networks.includes(name)) {
      throw new ApiError(
        422,
        'E_UNKNOWN_NETWORK',
        `Unknown network ${JSON.stringify(name)}: expected one of ${options.networks.join(', ')}`,
      );
    }
    const gatewayMac = options.gatewayMac(name);
    return {
      network: name,
      ...(gatewayMac === undefined ? {} : { gatewayMac }),
      groups: store.groups.peers(name, host.name),
    };
  });

  app.put(API_PATHS.vmGroup, async (request): Promise<VmGroupAnswer> => {
    const admin = authenticate(request, store.tokens, 'admin');
    const { uuid } = parseRequest(VmParams, request.params, 'params');
    const { group } = parseRequest(VmGroupBody, request.body, 'body');
    const before = store.groups.get(uuid)?.name ?? null;
    store.groups.set(uuid, group);
    options.audit?.({ event: 'group', actor: admin.name, vmUuid: uuid, before, after: group });
    return { vmUuid: uuid, group };
  });

  app.get(API_PATHS.vmGroup, async (request): Promise<VmGroupAnswer> => {
    authenticate(request, store.tokens, 'admin');
    const { uuid } = parseRequest(VmParams, request.params, 'params');
    return { vmUuid: uuid, group: store.groups.get(uuid)?.name ?? null };
  });
}
