import type { Site } from '../site/model.js';
import { nmConnectionName } from './execute.js';
import { hostLayout, type VlanInterface } from './layout.js';
import { uuidV5 } from '../libvirt/uuid.js';

/** A NetworkManager keyfile to write: its file name and text. */
export interface NmKeyfile {
  /** e.g. `ticrypt-net-bond0.1081.nmconnection` */
  readonly fileName: string;
  readonly text: string;
}

/**
 * NetworkManager keyfiles (`/etc/NetworkManager/system-connections/`, mode
 * 0600) for the VLAN interfaces of a host's vlan-mode networks: no address
 * (IPv4 and IPv6 disabled; the interface is only a bridge port), autoconnect
 * on, and marked `[user] ticrypt-net.managed=yes` so configuration
 * management can tell them from its own and leave them alone.
 *
 * @example renderNmKeyfiles(site, 'kvm1').map((f) => f.fileName) // ['ticrypt-net-bond0.1081.nmconnection', ...]
 */
export function renderNmKeyfiles(site: Site, host: string | undefined): NmKeyfile[] {
  return hostLayout(site, host).vlanInterfaces.map((vlan) => ({
    fileName: `${nmConnectionName(vlan.interface)}.nmconnection`,
    text: renderNmKeyfile(site.name, vlan),
  }));
}

/** One VLAN interface's keyfile. The UUID derives from the site and interface names (stable across runs). */
export function renderNmKeyfile(siteName: string, vlan: VlanInterface): string {
  return [
    `# Managed by ticrypt-net (site ${siteName}, network ${vlan.network}): an OVS bridge port, no address.`,
    '# Configuration management: leave this connection alone; ticrypt-net host apply owns it.',
    '[connection]',
    `id=${nmConnectionName(vlan.interface)}`,
    `uuid=${uuidV5(`nm/${siteName}/${vlan.interface}`)}`,
    'type=vlan',
    `interface-name=${vlan.interface}`,
    'autoconnect=true',
    '',
    '[vlan]',
    `parent=${vlan.parent}`,
    `id=${vlan.vlan}`,
    '',
    ...(vlan.mtu === undefined ? [] : ['[ethernet]', `mtu=${vlan.mtu}`, '']),
    '[ipv4]',
    'method=disabled',
    '',
    '[ipv6]',
    'method=disabled',
    '',
    '[user]',
    'ticrypt-net.managed=yes',
    `ticrypt-net.network=${vlan.network}`,
    '',
  ].join('\n');
}
