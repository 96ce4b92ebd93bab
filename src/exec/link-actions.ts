/**
 * The kernel-link actions both set-up planners take (a host's uplink VLAN
 * interfaces, the backend's gateway interfaces): create a VLAN interface,
 * bring a link up, raise its MTU. One home for their shape, their words and
 * the commands that do them (`ip`, or `nmcli` when NetworkManager runs),
 * never a shell. Pure.
 *
 * For: `src/host/` and `src/backend/setup/` (their models, describers and
 * executors). May not: run anything.
 */
import { NM_CONNECTION_PREFIX } from '../names.js';

/** How a VLAN interface is created. */
export type VlanMethod = 'nmcli' | 'ip';

/** Create a VLAN interface on its parent. */
export interface CreateVlanInterfaceAction {
  readonly kind: 'create-vlan-interface';
  readonly interface: string;
  readonly parent: string;
  readonly vlan: number;
  readonly method: VlanMethod;
  /** The MTU the site's network needs (absent: the parent's). */
  readonly mtu?: number;
  /** An address with its prefix (`192.168.128.1/17`), set in the same NetworkManager connection; absent: no address at all. */
  readonly address?: string;
}

/** Bring a link up. */
export interface SetLinkUpAction {
  readonly kind: 'set-link-up';
  readonly interface: string;
}

/** Raise a link's MTU. */
export interface SetLinkMtuAction {
  readonly kind: 'set-link-mtu';
  readonly interface: string;
  readonly mtu: number;
  /** What it has now, for the operator. */
  readonly was: number;
}

/** One of the link actions. */
export type LinkAction = CreateVlanInterfaceAction | SetLinkUpAction | SetLinkMtuAction;

/** The NetworkManager connection name ticrypt-net gives an interface (`ticrypt-net-bond0.1081`). */
export function nmConnectionName(iface: string): string {
  return `${NM_CONNECTION_PREFIX}${iface}`;
}

/**
 * One line saying what a link action does.
 *
 * @example describeLinkAction({ kind: 'set-link-up', interface: 'bond0.1081' }) === 'set interface bond0.1081 up'
 */
export function describeLinkAction(action: LinkAction): string {
  switch (action.kind) {
    case 'create-vlan-interface': {
      const extras = [
        action.mtu === undefined ? '' : `mtu ${action.mtu}`,
        action.address === undefined || action.method !== 'nmcli' ? '' : `address ${action.address}`,
      ].filter(Boolean);
      return `create VLAN interface ${action.interface} (parent ${action.parent}, VLAN ${action.vlan}${extras.map((e) => `, ${e}`).join('')}) with ${action.method === 'nmcli' ? 'NetworkManager' : 'ip link'}`;
    }
    case 'set-link-up':
      return `set interface ${action.interface} up`;
    case 'set-link-mtu':
      return `set interface ${action.interface} mtu ${action.mtu} (was ${action.was})`;
  }
}

/**
 * The commands a link action runs. With nmcli, a VLAN interface is one
 * connection, autoconnected, IPv6 off, IPv4 off or (with an address) manual;
 * with `ip`, the address is a separate action of the planner's.
 */
export function linkCommands(action: LinkAction): [string, ...string[]][] {
  switch (action.kind) {
    case 'create-vlan-interface': {
      const mtu = action.mtu === undefined ? [] : ['mtu', String(action.mtu)];
      if (action.method === 'nmcli') {
        const name = nmConnectionName(action.interface);
        const ipv4 =
          action.address === undefined
            ? ['ipv4.method', 'disabled']
            : ['ipv4.method', 'manual', 'ipv4.addresses', action.address];
        return [
          [
            'nmcli',
            ...['connection', 'add', 'type', 'vlan', 'con-name', name, 'ifname', action.interface],
            ...['dev', action.parent, 'id', String(action.vlan), ...mtu],
            ...ipv4,
            ...['ipv6.method', 'disabled', 'connection.autoconnect', 'yes'],
          ],
          ['nmcli', 'connection', 'up', name],
        ];
      }
      const vlan = ['type', 'vlan', 'id', String(action.vlan)];
      return [['ip', 'link', 'add', 'link', action.parent, 'name', action.interface, ...vlan, ...mtu]];
    }
    case 'set-link-up':
      return [['ip', 'link', 'set', 'dev', action.interface, 'up']];
    case 'set-link-mtu':
      return [['ip', 'link', 'set', 'dev', action.interface, 'mtu', String(action.mtu)]];
  }
}
