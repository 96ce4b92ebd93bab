import { create } from 'xmlbuilder2';
import type { AllowEntry, AllowProtocol } from '../protocol/api.js';
import { XmlParseError } from '../errors/xml-parse-error.js';
import { attr, children, isNode, readXmlRoot, type XmlNode } from './xml-read.js';
import { appendChild, cutSpan, findElements, maskMarkup } from './domain-edit.js';

/** ticrypt-net's XML namespace in a domain's `<metadata>`. */
export const TICRYPT_XMLNS = 'https://ticrypt.org/xmlns/ticrypt-net/1.0';
/** The prefix ticrypt-net writes (readers accept any prefix bound to {@link TICRYPT_XMLNS}). */
export const TICRYPT_PREFIX = 'ticrypt';

const PROTOCOLS: readonly AllowProtocol[] = ['tcp', 'udp', 'icmp', 'any'];

/**
 * The `<ticrypt:net>` element carrying a VM's allow-list:
 * `<ticrypt:allow protocol='tcp' address='203.0.113.10' ports='443'/>`, or
 * `domain='pypi.org'`, with `ports='8000-8100'` for a range.
 */
export function renderAllowMetadata(entries: readonly AllowEntry[]): string {
  const root = create().ele(TICRYPT_XMLNS, `${TICRYPT_PREFIX}:net`);
  for (const entry of entries) {
    const attributes: Record<string, string> = { protocol: entry.protocol };
    if (entry.type === 'address') attributes.address = entry.address;
    else attributes.domain = entry.domain;
    if (entry.ports !== undefined) {
      attributes.ports =
        entry.ports.from === entry.ports.to ? String(entry.ports.from) : `${entry.ports.from}-${entry.ports.to}`;
    }
    root.ele(TICRYPT_XMLNS, `${TICRYPT_PREFIX}:allow`, attributes);
  }
  return `${root.end({ prettyPrint: true, headless: true })}\n`;
}

/**
 * Put a VM's allow-list into its domain definition's `<metadata>` (replacing
 * a previous one, creating `<metadata>` when missing), so the hook can carry
 * it to the backend at registration. The rest of the document stays as it was.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not a domain.
 * @example setDomainAllowList(xml, [{ type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } }])
 */
export function setDomainAllowList(domainXml: string, entries: readonly AllowEntry[]): string {
  readXmlRoot(domainXml, 'domain', 'domain XML');
  let text = removeOwnMetadata(domainXml);
  let masked = maskMarkup(text);
  const domain = findElements(masked, 'domain')[0];
  if (domain === undefined) throw new XmlParseError('domain XML', 'expected a <domain> element, found none');
  const fragment = renderAllowMetadata(entries);
  const metadata = findElements(masked, 'metadata', domain)[0];
  if (metadata !== undefined) return appendChild(text, masked, metadata, fragment);
  // A new <metadata> goes where libvirt puts it: after <name>, <uuid>, <title>, <description>, whichever come last.
  const anchors = ['description', 'title', 'uuid', 'name'].flatMap((n) => findElements(masked, n, domain).slice(0, 1));
  const after = anchors.sort((a, b) => b.end - a.end)[0];
  if (after === undefined)
    return appendChild(text, masked, domain, `<metadata>\n  ${fragment.trim().replace(/\n/g, '\n  ')}\n</metadata>`);
  const indent = /[ \t]*$/.exec(text.slice(text.lastIndexOf('\n', after.start - 1) + 1, after.start))?.[0] ?? '';
  text = `${text.slice(0, after.end)}\n${indent}<metadata/>${text.slice(after.end)}`;
  masked = maskMarkup(text);
  const created = findElements(masked, 'metadata', findElements(masked, 'domain')[0])[0];
  return created === undefined ? text : appendChild(text, masked, created, fragment);
}

/**
 * Read a VM's allow-list back from its domain definition; `undefined` when
 * the domain carries none (an empty list is a list: nothing allowed).
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not a domain, or an entry is malformed.
 */
export function readDomainAllowList(domainXml: string): AllowEntry[] | undefined {
  const domain = readXmlRoot(domainXml, 'domain', 'domain XML');
  const metadata = domain.metadata;
  if (!isNode(metadata)) return undefined;
  for (const [key, value] of Object.entries(metadata)) {
    const match = /^([A-Za-z_][\w.-]*):net$/.exec(key);
    const nodes = Array.isArray(value) ? value : [value];
    for (const node of nodes) {
      const element: XmlNode = node === '' ? {} : (node as XmlNode);
      if (match === null || !isNode(element) || attr(element, `xmlns:${match[1]}`) !== TICRYPT_XMLNS) continue;
      return children(element, `${match[1]}:allow`).map(parseAllow);
    }
  }
  return undefined;
}

function removeOwnMetadata(text: string): string {
  const masked = maskMarkup(text);
  const metadata = findElements(masked, 'metadata')[0];
  if (metadata === undefined) return text;
  for (const prefix of new Set(
    [...masked.slice(metadata.start, metadata.end).matchAll(/<([A-Za-z_][\w.-]*):net\b/g)].map((m) => m[1] ?? ''),
  )) {
    for (const span of findElements(masked, `${prefix}:net`, metadata).reverse()) {
      const startTag = text.slice(span.start, text.indexOf('>', span.start));
      if (startTag.includes(TICRYPT_XMLNS)) return removeOwnMetadata(cutSpan(text, span));
    }
  }
  return text;
}

function parseAllow(node: XmlNode, index: number): AllowEntry {
  const bad = (reason: string) => new XmlParseError('domain XML', `metadata allow entry ${index + 1}: ${reason}`);
  const protocol = attr(node, 'protocol') as AllowProtocol | undefined;
  if (protocol === undefined || !PROTOCOLS.includes(protocol)) {
    throw bad(`expected protocol 'tcp', 'udp', 'icmp' or 'any', found ${JSON.stringify(protocol ?? 'none')}`);
  }
  const portsText = attr(node, 'ports');
  let ports: { from: number; to: number } | undefined;
  if (portsText !== undefined) {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(portsText);
    if (m === null) throw bad(`expected ports like 443 or 8000-8100, found ${JSON.stringify(portsText)}`);
    ports = { from: Number(m[1]), to: Number(m[2] ?? m[1]) };
  }
  const address = attr(node, 'address');
  const domain = attr(node, 'domain');
  const tail = ports === undefined ? {} : { ports };
  if (address !== undefined && domain === undefined) return { type: 'address', address, protocol, ...tail };
  if (domain !== undefined && address === undefined) return { type: 'domain', domain, protocol, ...tail };
  throw bad('expected exactly one of address and domain');
}
