import { isUnicastMac, normalizeMac } from '../site/mac.js';
import { attr, child, children, childText, type XmlNode, readXmlRoot } from './xml-read.js';

/** One `<interface>` of a domain, in either the configured or the live form. */
export interface DomainNic {
  /** The interface type: `network` (configured form), `bridge` (live form on an OVS network), ... */
  readonly type: string;
  /** Lower-case MAC; absent when the element has none or it is not a valid unicast MAC. */
  readonly mac?: string;
  /** The libvirt network (`<source network=...>`), present in both forms. */
  readonly network?: string;
  /** The bridge: from `<source bridge=...>` (bridge form and live form). */
  readonly bridge?: string;
  readonly portgroup?: string;
  /** VLAN tags (one for an access port, several for a trunk). */
  readonly vlanTags: readonly number[];
  /** Whether `<vlan trunk='yes'>`. */
  readonly vlanTrunk: boolean;
  /** The host-side device (`vnet3`), live form only. */
  readonly target?: string;
  /** `<virtualport type=...>`, e.g. `openvswitch`. */
  readonly virtualport?: string;
  /** The OVS `interfaceid` of the port, live form only (or when configured). */
  readonly interfaceId?: string;
  readonly model?: string;
}

/** What a domain XML says about the VM and its NICs. */
export interface DomainInfo {
  readonly name?: string;
  readonly uuid?: string;
  readonly nics: readonly DomainNic[];
}

/**
 * Read a domain XML (what `virsh dumpxml` prints, or what libvirt hands the
 * qemu hook on stdin) into its name, UUID and NICs. Unknown elements are
 * ignored; values that do not validate (a malformed MAC, a VLAN id out of
 * range) are left out rather than guessed.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when the text is not XML with a `<domain>` root.
 * @example
 * parseDomainXml(xml).nics.filter((nic) => nic.network === 'secure').map((nic) => nic.mac);
 */
export function parseDomainXml(text: string): DomainInfo {
  const domain = readXmlRoot(text, 'domain', 'domain XML');
  const nics = children(child(domain, 'devices'), 'interface').map(parseNic);
  return withDefined({ name: childText(domain, 'name'), uuid: childText(domain, 'uuid'), nics });
}

function parseNic(node: XmlNode): DomainNic {
  const source = child(node, 'source');
  const vlan = child(node, 'vlan');
  const virtualport = child(node, 'virtualport');
  const mac = attr(child(node, 'mac'), 'address');
  const vlanTags = children(vlan, 'tag')
    .map((tag) => Number(attr(tag, 'id')))
    .filter((id) => Number.isInteger(id) && id >= 0 && id <= 4095);
  return withDefined({
    type: attr(node, 'type') ?? '',
    mac: mac !== undefined && isUnicastMac(mac) ? normalizeMac(mac) : undefined,
    network: attr(source, 'network'),
    bridge: attr(source, 'bridge'),
    portgroup: attr(source, 'portgroup') ?? attr(node, 'portgroup'),
    vlanTags,
    vlanTrunk: attr(vlan, 'trunk') === 'yes',
    target: attr(child(node, 'target'), 'dev'),
    virtualport: attr(virtualport, 'type'),
    interfaceId: attr(child(virtualport, 'parameters'), 'interfaceid'),
    model: attr(child(node, 'model'), 'type'),
  });
}

/** Drop `undefined` properties, so results satisfy `exactOptionalPropertyTypes`. */
export function withDefined<T extends object>(value: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
