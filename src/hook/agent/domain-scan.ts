/**
 * What the agent needs of a domain: its name, UUID and NICs (MAC, network,
 * bridge), read from libvirt's domain XML or the network hook's `<hookData>`
 * with the fast scanner. Used by the hook call and by reconcile. May not: judge
 * which NICs are managed (`nics.ts`) or touch files or the network.
 */
import { isUnicastMac, normalizeMac } from '../../site/mac.js';
import { all, first, scanXml, type XmlElement } from './xml-scan.js';

/** What the hook needs of a NIC: a subset of `DomainNic`, so `parseDomainXml`'s result fits too. */
export interface HookDomainNic {
  /** Lower-case MAC; absent when missing or not a valid unicast MAC. */
  readonly mac?: string;
  readonly network?: string;
  readonly bridge?: string;
}

/** What the hook needs of a domain: a subset of `DomainInfo`. */
export interface HookDomain {
  readonly name?: string;
  readonly uuid?: string;
  readonly nics: readonly HookDomainNic[];
}

function nic(mac: string | undefined, network: string | undefined, bridge: string | undefined): HookDomainNic {
  return {
    ...(mac !== undefined && isUnicastMac(mac) ? { mac: normalizeMac(mac) } : {}),
    ...(network === undefined ? {} : { network }),
    ...(bridge === undefined ? {} : { bridge }),
  };
}

function text(element: XmlElement | undefined): string | undefined {
  return element === undefined ? undefined : element.text;
}

function withIdentity(name: string | undefined, uuid: string | undefined, nics: HookDomainNic[]): HookDomain {
  return { ...(name === undefined ? {} : { name }), ...(uuid === undefined ? {} : { uuid }), nics };
}

/**
 * Read the domain XML libvirt hands the qemu hook: name, UUID, and each
 * `<devices><interface>`'s MAC, `<source network>` and `<source bridge>`
 * (configured and live forms). Reads what `parseDomainXml` reads, faster.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not well-formed XML with a `<domain>` root.
 */
export function scanDomainXml(xml: string): HookDomain {
  const domain = scanXml(xml, 'domain', 'domain XML');
  const nics = all(first(domain, 'devices'), 'interface').map((element) => {
    const source = first(element, 'source');
    return nic(first(element, 'mac')?.attrs.get('address'), source?.attrs.get('network'), source?.attrs.get('bridge'));
  });
  return withIdentity(text(first(domain, 'name')), text(first(domain, 'uuid')), nics);
}

/**
 * Read what libvirt hands the network hook at `port-created` / `port-deleted`:
 * `<hookData><network>...</network><networkport>...</networkport></hookData>`,
 * as a one-NIC domain (the port's owner VM, its MAC on that network).
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not well-formed XML with a `<hookData>` root.
 */
export function scanPortHookData(xml: string, networkArg: string): HookDomain {
  const root = scanXml(xml, 'hookData', 'network hook data');
  const network = text(first(first(root, 'network'), 'name')) ?? networkArg;
  const port = first(root, 'networkport');
  const owner = first(port, 'owner');
  const nics = port
    ? [nic(first(port, 'mac')?.attrs.get('address'), network, first(port, 'plug')?.attrs.get('bridge'))]
    : [];
  return withIdentity(text(first(owner, 'name')), text(first(owner, 'uuid')), nics);
}
