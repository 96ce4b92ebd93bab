/**
 * Reading a libvirt `<network>` definition back (`virsh net-dumpxml`, or a
 * render of ours) for drift detection and for the library's users. It keeps
 * everything that changes how a bridge-mode network behaves (forward mode,
 * bridge, virtualport and its parameters, the VLAN with its trunk flag, native
 * mode and every tag, MTU, port isolation, guest RX filters, each portgroup's
 * VLAN and virtualport), ignores only what changes nothing (`<title>`,
 * `<description>`, `<metadata>`, the live `connections` count), and refuses
 * anything else with an error naming it: a parser that feeds drift detection
 * may not drop what it does not model.
 *
 * May not: guess a value it cannot read, or accept an element it does not know.
 */
import { XmlParseError } from '../errors/xml-parse-error.js';
import { withDefined } from './domain-nics.js';
import { attr, child, children, childText, isNode, readXmlRoot, type XmlNode } from './xml-read.js';

/** A `<vlan>`: its tags in document order, the trunk flag, and each tag's native mode. */
export interface LibvirtVlan {
  /** `<vlan trunk='yes'>`. */
  readonly trunk: boolean;
  readonly tags: readonly { readonly id: number; readonly nativeMode?: 'tagged' | 'untagged' }[];
}

/** A `<virtualport>`: its type (absent in a portgroup that inherits the network's) and `<parameters>` attributes. */
export interface LibvirtVirtualport {
  readonly type?: string;
  readonly parameters: Readonly<Record<string, string>>;
}

/** A `<portgroup>`. */
export interface LibvirtPortgroup {
  readonly name: string;
  readonly default: boolean;
  readonly vlan?: LibvirtVlan;
  readonly virtualport?: LibvirtVirtualport;
  readonly trustGuestRxFilters?: boolean;
}

/** Everything a libvirt bridge-mode network definition says that changes its behaviour. */
export interface LibvirtNetwork {
  readonly name: string;
  readonly uuid?: string;
  /** `<forward mode=...>`, `bridge` for ticrypt-net's networks. */
  readonly forwardMode?: string;
  readonly bridge?: string;
  /** `<virtualport>`, type `openvswitch` for ticrypt-net's networks. */
  readonly virtualport?: LibvirtVirtualport;
  readonly vlan?: LibvirtVlan;
  /** `<mtu size=...>`. */
  readonly mtu?: number;
  /** `<port isolated='yes'>`. */
  readonly portIsolated?: boolean;
  /** `<network trustGuestRxFilters=...>`. */
  readonly trustGuestRxFilters?: boolean;
  readonly portgroups: readonly LibvirtPortgroup[];
}

/** What an element may hold: attributes kept or ignored, and children (each once unless listed as repeatable). */
interface Shape {
  readonly attrs: readonly string[];
  readonly ignoredAttrs?: readonly string[];
  readonly children: Readonly<Record<string, Shape | 'text' | 'ignore'>>;
  readonly repeatable?: readonly string[];
  /** Every attribute is kept (`<parameters>`). */
  readonly anyAttr?: boolean;
}

const VLAN: Shape = {
  attrs: ['trunk'],
  children: { tag: { attrs: ['id', 'nativeMode'], children: {} } },
  repeatable: ['tag'],
};
const VIRTUALPORT: Shape = { attrs: ['type'], children: { parameters: { attrs: [], anyAttr: true, children: {} } } };
const NETWORK: Shape = {
  attrs: ['trustGuestRxFilters'],
  ignoredAttrs: ['connections'],
  children: {
    name: 'text',
    uuid: 'text',
    title: 'ignore',
    description: 'ignore',
    metadata: 'ignore',
    forward: { attrs: ['mode'], children: {} },
    bridge: { attrs: ['name'], children: {} },
    virtualport: VIRTUALPORT,
    vlan: VLAN,
    mtu: { attrs: ['size'], children: {} },
    port: { attrs: ['isolated'], children: {} },
    portgroup: {
      attrs: ['name', 'default', 'trustGuestRxFilters'],
      children: { vlan: VLAN, virtualport: VIRTUALPORT },
    },
  },
  repeatable: ['portgroup'],
};

/** Why an element or attribute a bridge network cannot carry matters, for the refusal. */
const WHY: Readonly<Record<string, string>> = {
  ip: "libvirt's own addresses and DHCP",
  dns: "libvirt's own DNS",
  domain: "libvirt's own DNS domain",
  route: 'static routes',
  nat: 'NAT',
  mac: 'the MAC of a bridge libvirt creates',
  bandwidth: 'QoS limits',
  interface: 'a pool of devices',
  pf: 'an SR-IOV physical function',
  address: 'a pool of PCI devices',
  driver: 'a device driver',
  dev: 'a forward device',
  stp: 'spanning tree on a bridge libvirt creates',
  delay: 'a bridge forward delay',
  macTableManager: "libvirt's MAC table management",
  zone: 'a firewalld zone',
  ipv6: 'IPv6 between guests',
};

/**
 * Read a libvirt network definition (`virsh net-dumpxml`, or one rendered by
 * `renderNetworkXml`) into everything that changes its behaviour.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not XML with a `<network>`
 * root, has no `<name>`, has a value it cannot read (a VLAN id, an MTU), or
 * holds an element or attribute this model cannot represent (it names it and its path).
 * @example parseNetworkXml(xml).vlan // { trunk: false, tags: [{ id: 1081 }] }
 */
export function parseNetworkXml(text: string): LibvirtNetwork {
  const root = readXmlRoot(text, 'network', 'network XML');
  refuseUnknown(root);
  const name = childText(root, 'name');
  if (name === undefined || name === '') throw new XmlParseError('network XML', 'expected a <name>, found none');
  const mtu = child(root, 'mtu');
  return withDefined<LibvirtNetwork>({
    name,
    uuid: childText(root, 'uuid'),
    forwardMode: attr(child(root, 'forward'), 'mode'),
    bridge: attr(child(root, 'bridge'), 'name'),
    virtualport: readVirtualport(child(root, 'virtualport')),
    vlan: readVlan(child(root, 'vlan'), 'network/vlan'),
    mtu: mtu === undefined ? undefined : readInteger(attr(mtu, 'size'), 'network/mtu@size', 68, 65535),
    portIsolated: yesNo(attr(child(root, 'port'), 'isolated'), 'network/port@isolated'),
    trustGuestRxFilters: yesNo(attr(root, 'trustGuestRxFilters'), 'network@trustGuestRxFilters'),
    portgroups: children(root, 'portgroup').map((group, index) => {
      const at = `network/portgroup[${index + 1}]`;
      return withDefined<LibvirtPortgroup>({
        name: attr(group, 'name') ?? '',
        default: yesNo(attr(group, 'default'), `${at}@default`) ?? false,
        vlan: readVlan(child(group, 'vlan'), `${at}/vlan`),
        virtualport: readVirtualport(child(group, 'virtualport')),
        trustGuestRxFilters: yesNo(attr(group, 'trustGuestRxFilters'), `${at}@trustGuestRxFilters`),
      });
    }),
  });
}

/**
 * A VLAN in words, as drift messages show it: `1081`, `trunk 777,888,999`,
 * `1081 native untagged, 1090`; `none` without one.
 */
export function describeVlan(vlan: LibvirtVlan | undefined): string {
  if (vlan === undefined) return 'none';
  const tags = vlan.tags.map((t) => `${t.id}${t.nativeMode === undefined ? '' : ` native ${t.nativeMode}`}`).join(',');
  return vlan.trunk ? `trunk ${tags}` : tags;
}

/** A virtualport in words: `openvswitch`, `openvswitch(profileid=bob)`; `none` without one. */
export function describeVirtualport(port: LibvirtVirtualport | undefined): string {
  if (port === undefined) return 'none';
  const params = Object.entries(port.parameters)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${port.type ?? '(inherited)'}${params === '' ? '' : `(${params})`}`;
}

function readVlan(node: XmlNode | undefined, at: string): LibvirtVlan | undefined {
  if (node === undefined) return undefined;
  const tags = children(node, 'tag').map((tag, index) => {
    const nativeMode = attr(tag, 'nativeMode');
    if (nativeMode !== undefined && nativeMode !== 'tagged' && nativeMode !== 'untagged') {
      throw new XmlParseError(
        'network XML',
        `expected nativeMode 'tagged' or 'untagged' at ${at}/tag[${index + 1}], found ${JSON.stringify(nativeMode)}`,
      );
    }
    return withDefined<LibvirtVlan['tags'][number]>({
      id: readInteger(attr(tag, 'id'), `${at}/tag[${index + 1}]@id`, 0, 4095),
      nativeMode,
    });
  });
  if (tags.length === 0) throw new XmlParseError('network XML', `expected at least one <tag> in ${at}, found none`);
  return { trunk: yesNo(attr(node, 'trunk'), `${at}@trunk`) ?? false, tags };
}

function readVirtualport(node: XmlNode | undefined): LibvirtVirtualport | undefined {
  if (node === undefined) return undefined;
  const params = child(node, 'parameters') ?? {};
  const parameters = Object.fromEntries(
    Object.entries(params)
      .filter(([key, value]) => key.startsWith('@_') && typeof value === 'string')
      .map(([key, value]) => [key.slice(2), value as string]),
  );
  return withDefined<LibvirtVirtualport>({ type: attr(node, 'type'), parameters });
}

function readInteger(value: string | undefined, at: string, min: number, max: number): number {
  const number = value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new XmlParseError(
      'network XML',
      `expected an integer ${min}-${max} at ${at}, found ${value === undefined ? 'none' : JSON.stringify(value)}`,
    );
  }
  return number;
}

function yesNo(value: string | undefined, at: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw new XmlParseError('network XML', `expected 'yes' or 'no' at ${at}, found ${JSON.stringify(value)}`);
}

/** Everything in `node` the shape does not allow, each as `what at path (why)`. */
function unknownParts(node: XmlNode, shape: Shape, path: string): string[] {
  const found: string[] = [];
  const note = (what: string, at: string, name?: string) => {
    const why = name === undefined ? undefined : WHY[name];
    found.push(`${what} at ${at}${why === undefined ? '' : ` (${why})`}`);
  };
  for (const [key, value] of Object.entries(node)) {
    if (key === '#text') {
      if (typeof value === 'string' && value.trim() !== '') note(`text ${JSON.stringify(value.slice(0, 40))}`, path);
      continue;
    }
    if (key.startsWith('@_')) {
      const name = key.slice(2);
      if (!(shape.anyAttr || shape.attrs.includes(name) || shape.ignoredAttrs?.includes(name))) {
        note(`attribute ${name}`, `${path}@${name}`, name);
      }
      continue;
    }
    const sub = shape.children[key];
    if (sub === undefined) {
      note(`<${key}>`, `${path}/${key}`, key);
      continue;
    }
    if (sub === 'ignore') continue;
    const list = Array.isArray(value) ? value : [value];
    if (list.length > 1 && !shape.repeatable?.includes(key)) note(`a second <${key}>`, `${path}/${key}`);
    if (sub === 'text') {
      if (
        !list.every(
          (item) => typeof item === 'string' || (isNode(item) && Object.keys(item).every((k) => k === '#text')),
        )
      )
        note(`attributes or children in <${key}>`, `${path}/${key}`);
      continue;
    }
    list.forEach((item, index) => {
      if (item === '') return;
      const at = list.length > 1 ? `${path}/${key}[${index + 1}]` : `${path}/${key}`;
      if (isNode(item)) found.push(...unknownParts(item, sub, at));
      else note(`text in <${key}>`, at);
    });
  }
  return found;
}

/** Refuse the document when it holds anything the model cannot represent, naming all of it. */
function refuseUnknown(root: XmlNode): void {
  const found = unknownParts(root, NETWORK, 'network');
  if (found.length === 0) return;
  throw new XmlParseError(
    'network XML',
    `expected only what a bridge-mode network carries, found ${found.join('; ')}: ${found.length === 1 ? 'it changes' : 'each changes'} the network's behaviour and cannot be represented`,
  );
}
