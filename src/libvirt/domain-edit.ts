import { UsageError } from '../errors/usage-error.js';
import { XmlParseError } from '../errors/xml-parse-error.js';
import { isUnicastMac, normalizeMac } from '../site/mac.js';
import { attr, child, children, readXmlRoot, type XmlNode } from './xml-read.js';

/** Parse one `<interface>` element (wrapped: the shared parser reads interfaces as lists). */
function readInterface(text: string): XmlNode {
  const fragment = text.replace(/^\s*<\?xml[^>]*\?>/, '');
  const found = children(readXmlRoot(`<devices>${fragment}</devices>`, 'devices', 'interface XML'), 'interface');
  if (found.length !== 1 || found[0] === undefined) {
    throw new XmlParseError('interface XML', `expected one <interface> element, found ${found.length}`);
  }
  return found[0];
}

/** The `<devices>` element of a domain (checked to be a domain first). */
function devicesOf(domainXml: string): { masked: string; domain: Span; devices?: Span } {
  readXmlRoot(domainXml, 'domain', 'domain XML');
  const masked = maskMarkup(domainXml);
  const domain = findElements(masked, 'domain')[0];
  if (domain === undefined) throw new XmlParseError('domain XML', 'expected a <domain> element, found none');
  const devices = findElements(masked, 'devices', domain)[0];
  return devices === undefined ? { masked, domain } : { masked, domain, devices };
}

/** The `<interface>` elements of a domain's `<devices>` with their MACs. */
function interfacesOf(domainXml: string, masked: string, devices: Span | undefined): { span: Span; mac?: string }[] {
  if (devices === undefined) return [];
  return findElements(masked, 'interface', devices).map((span) => {
    const node = readInterface(domainXml.slice(span.start, span.end));
    const mac = attr(child(node, 'mac'), 'address');
    return mac !== undefined && isUnicastMac(mac) ? { span, mac: normalizeMac(mac) } : { span };
  });
}

/** The MACs of a domain definition's interfaces, in document order. */
export function domainInterfaceMacs(domainXml: string): string[] {
  const { masked, devices } = devicesOf(domainXml);
  return interfacesOf(domainXml, masked, devices).flatMap((i) => (i.mac === undefined ? [] : [i.mac]));
}

/**
 * Add a rendered `<interface>` (see `renderInterfaceXml`) as the last device
 * of a domain definition. Everything else of the document stays byte for
 * byte: the element is spliced into the text, not re-serialized.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when either document cannot be read.
 * @throws {UsageError} `E_USAGE` when the interface has no MAC or the domain already has a NIC with it.
 * @example addDomainInterface(await readFile('vm.xml', 'utf8'), renderInterfaceXml({ network, mac }))
 */
export function addDomainInterface(domainXml: string, interfaceXml: string): string {
  const node = readInterface(interfaceXml);
  const mac = attr(child(node, 'mac'), 'address');
  if (mac === undefined || !isUnicastMac(mac)) {
    throw new UsageError(
      `Cannot add interface: expected a <mac address=...> with a unicast MAC, found ${JSON.stringify(mac ?? 'none')}`,
    );
  }
  const { masked, domain, devices } = devicesOf(domainXml);
  if (interfacesOf(domainXml, masked, devices).some((i) => i.mac === normalizeMac(mac))) {
    throw new UsageError(`Cannot add interface: the domain already has a NIC with MAC ${normalizeMac(mac)}`);
  }
  const fragment = interfaceXml.replace(/^\s*<\?xml[^>]*\?>\s*/, '');
  if (devices === undefined)
    return appendChild(domainXml, masked, domain, `<devices>\n  ${fragment.trim().replace(/\n/g, '\n  ')}\n</devices>`);
  return appendChild(domainXml, masked, devices, fragment);
}

/**
 * Remove the `<interface>` with `mac` from a domain definition, keeping the
 * rest of the text intact.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not a domain.
 * @throws {UsageError} `E_USAGE` when no NIC has that MAC.
 */
export function removeDomainInterface(domainXml: string, mac: string): string {
  if (!isUnicastMac(mac))
    throw new UsageError(
      `Invalid MAC: expected a unicast MAC address like 52:54:00:12:34:56, found ${JSON.stringify(mac)}`,
    );
  const { masked, devices } = devicesOf(domainXml);
  const found = interfacesOf(domainXml, masked, devices).find((i) => i.mac === normalizeMac(mac));
  if (found === undefined)
    throw new UsageError(`Cannot remove interface: the domain has no NIC with MAC ${normalizeMac(mac)}`);
  return cutSpan(domainXml, found.span);
}

// In-place editing: locating elements in the text so the rest of a document
// (comments, attribute order, whitespace, unknown elements) stays byte for byte,
// which no parse-and-serialize round trip guarantees.

/** A located element: `[start, end)` offsets of its text. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** The text with comments, CDATA sections and processing instructions blanked (same length, so offsets hold). */
export function maskMarkup(text: string): string {
  return text.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>/g, (m) => ' '.repeat(m.length));
}

/**
 * The spans of elements named `name` (a qualified name like `ticrypt:net` is
 * fine) directly or indirectly inside `within` of `masked`, not nested in
 * one another. Elements with the same name nested inside are skipped over.
 */
export function findElements(masked: string, name: string, within: Span = { start: 0, end: masked.length }): Span[] {
  const spans: Span[] = [];
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const open = new RegExp(`<${escaped}(?=[\\s/>])[^>]*?(/?)>`, 'g');
  const tag = new RegExp(`<(/?)${escaped}(?=[\\s/>])[^>]*?(/?)>`, 'g');
  open.lastIndex = within.start;
  for (let match = open.exec(masked); match !== null && match.index < within.end; match = open.exec(masked)) {
    const start = match.index;
    if (match[1] === '/') {
      spans.push({ start, end: open.lastIndex });
      continue;
    }
    let depth = 1;
    tag.lastIndex = open.lastIndex;
    let end = -1;
    for (let t = tag.exec(masked); t !== null; t = tag.exec(masked)) {
      if (t[2] === '/') continue;
      depth += t[1] === '/' ? -1 : 1;
      if (depth === 0) {
        end = tag.lastIndex;
        break;
      }
    }
    if (end < 0 || end > within.end) break;
    spans.push({ start, end });
    open.lastIndex = end;
  }
  return spans;
}

/** The span of the element's content (between its start and end tags); `undefined` for a self-closing element. */
export function contentSpan(masked: string, element: Span): Span | undefined {
  const startTagEnd = masked.indexOf('>', element.start) + 1;
  if (masked[startTagEnd - 2] === '/') return undefined;
  const endTagStart = masked.lastIndexOf('</', element.end);
  return { start: startTagEnd, end: endTagStart };
}

/** The whitespace that starts the line `offset` is on. */
export function indentAt(text: string, offset: number): string {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))?.[0] ?? '';
}

/** Remove a span together with its line's leading whitespace and one following newline, when it sits alone on its lines. */
export function cutSpan(text: string, span: Span): string {
  const lineStart = text.lastIndexOf('\n', span.start - 1) + 1;
  const before = text.slice(lineStart, span.start);
  const after = /^[ \t]*\r?\n/.exec(text.slice(span.end))?.[0];
  if (/^[ \t]*$/.test(before) && after !== undefined)
    return text.slice(0, lineStart) + text.slice(span.end + after.length);
  return text.slice(0, span.start) + text.slice(span.end);
}

/** Re-indent a (multi-line) fragment so its first line starts at `indent`, keeping its inner structure. */
export function reindent(fragment: string, indent: string): string {
  const lines = fragment.replace(/\s+$/, '').split('\n');
  const base = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)?.[0].length ?? 0));
  return lines.map((l) => (l.trim() === '' ? '' : indent + l.slice(base))).join('\n');
}

/**
 * Insert `fragment` as the last child of the element at `element` (expanding
 * `<x/>` to `<x>...</x>`), indented one step (two spaces) deeper than it.
 */
export function appendChild(text: string, masked: string, element: Span, fragment: string): string {
  const indent = indentAt(text, element.start);
  const inner = reindent(fragment, `${indent}  `);
  const content = contentSpan(masked, element);
  if (content === undefined) {
    const startTag = text.slice(element.start, element.end).replace(/\s*\/>$/, '>');
    const name = /^<([^\s/>]+)/.exec(startTag)?.[1] ?? '';
    return `${text.slice(0, element.start)}${startTag}\n${inner}\n${indent}</${name}>${text.slice(element.end)}`;
  }
  const body = text.slice(content.start, content.end);
  const trimmed = body.replace(/\s+$/, '');
  return `${text.slice(0, content.start)}${trimmed}\n${inner}\n${indent}${text.slice(content.end)}`;
}
