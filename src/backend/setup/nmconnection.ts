/**
 * NetworkManager keyfiles for the backend's gateway interfaces: the VLAN
 * `<trunk>.<vlan>` (or the given `gatewayInterface`, as an ethernet
 * connection) with the gateway address and nothing else (no default route,
 * no DNS, IPv6 off), the network's MTU, marked as ticrypt-net's. Pure.
 */
import { renderNmKeyfile, type NmKeyfile } from '../../exec/nm-keyfile.js';
import type { Site } from '../../site/model.js';
import { gatewayInterfaces } from './plan.js';

/**
 * One keyfile per network's gateway interface.
 *
 * @example renderBackendNmKeyfiles(site)[0].fileName // 'ticrypt-net-bond0.1081.nmconnection'
 */
export function renderBackendNmKeyfiles(site: Site): NmKeyfile[] {
  return gatewayInterfaces(site).map((gw) =>
    renderNmKeyfile({
      site: site.name,
      network: gw.network,
      iface: gw.interface,
      type: gw.vlan === undefined ? 'ethernet' : 'vlan',
      role: `the VM network's gateway ${gw.address}, nothing else`,
      owner: 'ticrypt-net backend apply',
      sections: [
        ...(gw.vlan === undefined
          ? []
          : [
              [
                'vlan',
                [
                  ['parent', gw.vlan.parent],
                  ['id', gw.vlan.id],
                ],
              ] as const,
            ]),
        ...(gw.mtu === undefined ? [] : [['ethernet', [['mtu', gw.mtu]]] as const]),
        [
          'ipv4',
          [
            ['method', 'manual'],
            ['address1', gw.address],
            ['never-default', 'true'],
            ['ignore-auto-dns', 'true'],
          ],
        ],
        ['ipv6', [['method', 'disabled']]],
      ],
    }),
  );
}
