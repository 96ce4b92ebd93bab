import { create } from 'xmlbuilder2';
import { UsageError } from '../errors/usage-error.js';
import { isUnicastMac, normalizeMac } from '../site/mac.js';
import type { Network } from '../site/model.js';
import { effectiveVlan, findPortgroup } from '../site/lookup.js';
import { addVlan } from './network-xml.js';

/** What a VM NIC needs to be rendered. */
export interface InterfaceOptions {
  /** The site network the NIC joins. */
  readonly network: Network;
  /** The NIC's MAC (any case; rendered lower-case). See `generateMac`. */
  readonly mac: string;
  /** A portgroup of the network; its VLAN replaces the network's. */
  readonly portgroup?: string;
  /**
   * `network` (default): `<interface type='network'>` on the libvirt network.
   * `bridge`: `<interface type='bridge'>` straight on the OVS bridge, for hosts without the libvirt network.
   */
  readonly form?: 'network' | 'bridge';
  /** NIC model, default `virtio`. */
  readonly model?: string;
  /** Boot order (`<boot order='N'/>`), 1 or more. */
  readonly bootOrder?: number;
}

/**
 * Render a VM NIC as a domain `<interface>` element, tagged with its VLAN.
 *
 * @throws {UsageError} `E_USAGE` on an invalid MAC, an unknown portgroup, a
 * bad boot order or model.
 * @example
 * renderInterfaceXml({ network: findNetwork(site, 'secure'), mac: generateMac() });
 * // <interface type="network">
 * //   <mac address="52:54:00:..."/>
 * //   <source network="secure"/>
 * //   <virtualport type="openvswitch"/>
 * //   <vlan><tag id="1081"/></vlan>
 * //   <model type="virtio"/>
 * // </interface>
 */
export function renderInterfaceXml(options: InterfaceOptions): string {
  const { network, portgroup, form = 'network', model = 'virtio', bootOrder } = options;
  if (!isUnicastMac(options.mac)) {
    throw new UsageError(
      `Invalid MAC: expected a unicast MAC address like 52:54:00:12:34:56, found ${JSON.stringify(options.mac)}`,
    );
  }
  if (!/^[a-z0-9_-]{1,32}$/i.test(model)) {
    throw new UsageError(
      `Invalid NIC model: expected a model name like virtio or e1000, found ${JSON.stringify(model)}`,
    );
  }
  if (bootOrder !== undefined && (!Number.isInteger(bootOrder) || bootOrder < 1)) {
    throw new UsageError(`Invalid boot order: expected an integer of 1 or more, found ${String(bootOrder)}`);
  }
  if (portgroup !== undefined) findPortgroup(network, portgroup);

  const root = create().ele('interface', { type: form });
  root.ele('mac', { address: normalizeMac(options.mac) });
  if (form === 'network') {
    root.ele('source', portgroup === undefined ? { network: network.name } : { network: network.name, portgroup });
  } else {
    root.ele('source', { bridge: network.bridge });
  }
  root.ele('virtualport', { type: 'openvswitch' });
  addVlan(root, effectiveVlan(network, portgroup));
  if (network.mtu !== undefined) root.ele('mtu', { size: String(network.mtu) });
  root.ele('model', { type: model });
  if (bootOrder !== undefined) root.ele('boot', { order: String(bootOrder) });
  return `${root.end({ prettyPrint: true, headless: true })}\n`;
}
