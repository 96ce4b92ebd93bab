import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import type { Network, Site } from '../site/model.js';
import { networkUuid } from './uuid.js';

/**
 * Render a site network as a libvirt `<network>` definition for
 * `virsh net-define`: an existing Open vSwitch bridge (`forward mode='bridge'`,
 * `virtualport type='openvswitch'`), the network's VLAN tag, and its portgroups
 * with theirs. libvirt then creates each VM port already tagged, in the same
 * `ovs-vsctl` call that adds it, so a port is never briefly untagged.
 *
 * A network MTU is not rendered here: libvirt allows `<mtu>` only on networks
 * it builds itself, not in bridge mode. The MTU goes on each interface instead
 * (see `renderInterfaceXml`) and on the bridge's uplink (host side).
 *
 * The output is deterministic: the UUID derives from the site and network names.
 *
 * @example
 * const xml = renderNetworkXml(site, findNetwork(site, 'secure'));
 * // <network>\n  <name>secure</name>\n  <uuid>...</uuid>\n  <forward mode="bridge"/>\n ...
 */
export function renderNetworkXml(site: Pick<Site, 'name'>, network: Network): string {
  const root = create().ele('network');
  root.ele('name').txt(network.name);
  root.ele('uuid').txt(networkUuid(site.name, network.name));
  root.ele('forward', { mode: 'bridge' });
  root.ele('bridge', { name: network.bridge });
  root.ele('virtualport', { type: 'openvswitch' });
  addVlan(root, network.vlan);
  for (const group of network.portgroups) {
    const portgroup = root.ele(
      'portgroup',
      group.default ? { name: group.name, default: 'yes' } : { name: group.name },
    );
    addVlan(portgroup, group.vlan);
  }
  return `${root.end({ prettyPrint: true, headless: true })}\n`;
}

/** Append `<vlan><tag id='N'/></vlan>` to an element. */
export function addVlan(parent: XMLBuilder, vlan: number): void {
  parent.ele('vlan').ele('tag', { id: String(vlan) });
}
