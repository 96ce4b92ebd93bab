import { renderNmKeyfile, type NmKeyfile } from '../exec/nm-keyfile.js';
import type { Site } from '../site/model.js';
import { hostLayout } from './layout.js';

export type { NmKeyfile } from '../exec/nm-keyfile.js';

/**
 * NetworkManager keyfiles (`/etc/NetworkManager/system-connections/`, mode
 * 0600) for the VLAN interfaces of a host's vlan-mode networks: no address
 * (IPv4 and IPv6 disabled; the interface is only a bridge port), the
 * network's MTU when the site sets one, autoconnect on, and marked
 * `[user] ticrypt-net.managed=yes` so configuration management can tell them
 * from its own and leave them alone.
 *
 * @example renderNmKeyfiles(site, 'kvm1').map((f) => f.fileName) // ['ticrypt-net-bond0.1081.nmconnection', ...]
 */
export function renderNmKeyfiles(site: Site, host: string | undefined): NmKeyfile[] {
  return hostLayout(site, host).vlanInterfaces.map((vlan) =>
    renderNmKeyfile({
      site: site.name,
      network: vlan.network,
      iface: vlan.interface,
      type: 'vlan',
      role: 'an OVS bridge port, no address',
      owner: 'ticrypt-net host apply',
      sections: [
        [
          'vlan',
          [
            ['parent', vlan.parent],
            ['id', vlan.vlan],
          ],
        ],
        ...(vlan.mtu === undefined ? [] : [['ethernet', [['mtu', vlan.mtu]]] as const]),
        ['ipv4', [['method', 'disabled']]],
        ['ipv6', [['method', 'disabled']]],
      ],
    }),
  );
}
