import { XmlParseError } from '../errors/xml-parse-error.js';
import { withDefined } from './domain-nics.js';
import { attr, child, children, childText, readXmlRoot, type XmlNode } from './xml-read.js';

/** The part of a site network a libvirt `<network>` definition carries. */
export interface LibvirtNetwork {
  readonly name: string;
  readonly uuid?: string;
  /** `<forward mode=...>`, `bridge` for ticrypt-net's networks. */
  readonly forwardMode?: string;
  readonly bridge?: string;
  /** `<virtualport type=...>`, `openvswitch` for ticrypt-net's networks. */
  readonly virtualport?: string;
  /** The network's VLAN tag, when it has exactly one. */
  readonly vlan?: number;
  readonly portgroups: readonly { readonly name: string; readonly vlan?: number; readonly default: boolean }[];
}

/**
 * Read a libvirt network definition (`virsh net-dumpxml`, or one rendered by
 * `renderNetworkXml`) back into its name, bridge, VLAN and portgroups.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not XML with a `<network>`
 * root, or has no `<name>`.
 */
export function parseNetworkXml(text: string): LibvirtNetwork {
  const root = readXmlRoot(text, 'network', 'network XML');
  const name = childText(root, 'name');
  if (name === undefined || name === '') throw new XmlParseError('network XML', 'expected a <name>, found none');
  return withDefined({
    name,
    uuid: childText(root, 'uuid'),
    forwardMode: attr(child(root, 'forward'), 'mode'),
    bridge: attr(child(root, 'bridge'), 'name'),
    virtualport: attr(child(root, 'virtualport'), 'type'),
    vlan: singleVlan(root),
    portgroups: children(root, 'portgroup').map((group) =>
      withDefined({
        name: attr(group, 'name') ?? '',
        vlan: singleVlan(group),
        default: attr(group, 'default') === 'yes',
      }),
    ),
  });
}

function singleVlan(node: XmlNode): number | undefined {
  const tags = children(child(node, 'vlan'), 'tag');
  const id = tags.length === 1 ? Number(attr(tags[0], 'id')) : Number.NaN;
  return Number.isInteger(id) ? id : undefined;
}
