/**
 * NetworkManager's keyfile format (`/etc/NetworkManager/system-connections/
 * NAME.nmconnection`, mode 0600) for the connections ticrypt-net owns: a
 * header that says so, the sections in order, and the `[user]` mark
 * `ticrypt-net.managed=yes` configuration management can match on. Pure.
 *
 * For: the host's VLAN interfaces and the backend's gateway interfaces.
 * May not: write a file, or run nmcli.
 */
import { uuidV5 } from '../libvirt/uuid.js';
import { NM_CONNECTION_PREFIX } from '../names.js';

/** A NetworkManager keyfile to write: its file name and text. */
export interface NmKeyfile {
  /** e.g. `ticrypt-net-bond0.1081.nmconnection` */
  readonly fileName: string;
  readonly text: string;
}

/** One keyfile section: its name and `key=value` lines in order. */
export type NmSection = readonly [name: string, entries: readonly (readonly [string, string | number])[]];

/**
 * A keyfile for interface `iface` owned by ticrypt-net: `[connection]` (id,
 * a UUID derived from the site and interface names, so stable across runs,
 * type, interface, autoconnect), then `sections`, then the `[user]` mark.
 *
 * @example renderNmKeyfile({ site: 'ticrypt', network: 'secure', iface: 'bond0.1081', type: 'vlan', role: '...', sections: [] })
 */
export function renderNmKeyfile(options: {
  readonly site: string;
  readonly network: string;
  readonly iface: string;
  readonly type: 'vlan' | 'ethernet';
  /** One line on what the connection is, after `Managed by ticrypt-net (...)`. */
  readonly role: string;
  /** Who owns it, for configuration management: `ticrypt-net host apply`. */
  readonly owner: string;
  readonly sections: readonly NmSection[];
}): NmKeyfile {
  const id = `${NM_CONNECTION_PREFIX}${options.iface}`;
  const all: NmSection[] = [
    [
      'connection',
      [
        ['id', id],
        ['uuid', uuidV5(`nm/${options.site}/${options.iface}`)],
        ['type', options.type],
        ['interface-name', options.iface],
        ['autoconnect', 'true'],
      ],
    ],
    ...options.sections,
    [
      'user',
      [
        ['ticrypt-net.managed', 'yes'],
        ['ticrypt-net.network', options.network],
      ],
    ],
  ];
  const text = [
    `# Managed by ticrypt-net (site ${options.site}, network ${options.network}): ${options.role}.`,
    `# Configuration management: leave this connection alone; ${options.owner} owns it.`,
    ...all.map(([name, entries]) => [`[${name}]`, ...entries.map(([k, v]) => `${k}=${v}`), ''].join('\n')),
  ].join('\n');
  return { fileName: `${id}.nmconnection`, text };
}
