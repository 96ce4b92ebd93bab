/**
 * A second XML reader, for a measured reason: the hook must read libvirt's
 * domain XML in well under a millisecond without loading a general-purpose
 * XML library (~10 ms of start-up per VM start); everything else uses
 * `src/libvirt/xml-read.ts`. A property test checks both read the same NICs.
 * May not: grow beyond what the hook reads.
 */
import { XmlParseError } from '../../errors/xml-parse-error.js';

/** An element of a scanned document. */
export interface XmlElement {
  readonly name: string;
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Its text content (entities decoded, trimmed). */
  readonly text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_.:-]*/y;
const ATTR = /\s+([A-Za-z_:][A-Za-z0-9_.:-]*)\s*=\s*(?:'([^'<]*)'|"([^"<]*)")/y;
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const MAX_DEPTH = 256;

/**
 * Parse an XML document into elements, checking it is well-formed: one root,
 * balanced tags, quoted attributes, known entities; comments, processing
 * instructions and CDATA allowed, DOCTYPE refused. Made for the hook, which
 * must read libvirt's domain XML in well under a millisecond and without
 * loading a general-purpose XML library (that costs ~10 ms of start-up per VM
 * start); the rest of the code uses `readXmlRoot`. A property test checks it
 * reads the same NICs as `parseDomainXml`.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when the text is not well-formed XML or its root is not `root`.
 */
export function scanXml(text: string, root: string, what: string): XmlElement {
  if (text.trim() === '') throw new XmlParseError(what, 'expected XML, found empty input');
  const fail = (reason: string, at: number): never => {
    const line = text.slice(0, at).split('\n').length;
    throw new XmlParseError(what, `expected well-formed XML, found ${reason} at line ${line}`);
  };
  type Open = { name: string; attrs: Map<string, string>; children: XmlElement[]; text: string[] };
  const stack: Open[] = [];
  let top: XmlElement | undefined;
  let i = 0;
  const decode = (raw: string, at: number): string =>
    raw.includes('&')
      ? raw.replace(/&([^;&<\s]*)(;?)/g, (_match, body: string, semicolon: string) => {
          const named = NAMED[body];
          if (semicolon === '') return fail('a bare & (expected an entity like &amp;)', at);
          if (named !== undefined) return named;
          const code = /^#[0-9]{1,7}$/.test(body)
            ? Number(body.slice(1))
            : /^#x[0-9A-Fa-f]{1,6}$/.test(body)
              ? Number.parseInt(body.slice(2), 16)
              : -1;
          return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : fail(`an unknown entity &${body};`, at);
        })
      : raw;
  const close = (open: Open): XmlElement => ({
    name: open.name,
    attrs: open.attrs,
    children: open.children,
    text: open.text.join('').trim(),
  });
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt === -1 ? text.slice(i) : text.slice(i, lt);
    if (chunk !== '') {
      const parent = stack[stack.length - 1];
      if (parent) parent.text.push(decode(chunk, i));
      else if (chunk.trim() !== '') fail('text outside the root element', i);
    }
    if (lt === -1) break;
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) fail('an unterminated comment', i);
      i = end + 3;
    } else if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end === -1) fail('an unterminated processing instruction', i);
      i = end + 2;
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      const parent = stack[stack.length - 1];
      if (end === -1 || !parent) fail('a misplaced or unterminated CDATA section', i);
      parent!.text.push(text.slice(i + 9, end));
      i = end + 3;
    } else if (text.startsWith('<!', i)) {
      fail('a DOCTYPE or declaration (not accepted)', i);
    } else if (text.startsWith('</', i)) {
      NAME.lastIndex = i + 2;
      const name = NAME.exec(text)?.[0];
      const end = text.indexOf('>', i);
      const open = stack.pop();
      if (name === undefined || end === -1 || text.slice(i + 2 + name.length, end).trim() !== '') {
        fail('a malformed end tag', i);
      }
      if (!open || open.name !== name) fail(`</${name}> closing <${open?.name ?? 'nothing'}>`, i);
      const element = close(open!);
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else top = element;
      i = end + 1;
    } else {
      NAME.lastIndex = i + 1;
      const name = NAME.exec(text)?.[0];
      if (name === undefined) fail('a malformed start tag', i);
      if (top) fail('a second root element', i);
      if (stack.length >= MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`, i);
      const attrs = new Map<string, string>();
      let j = i + 1 + name!.length;
      for (;;) {
        ATTR.lastIndex = j;
        const match = ATTR.exec(text);
        if (!match) break;
        const [whole, key = '', single, double] = match;
        if (attrs.has(key)) fail(`a repeated attribute ${key}`, j);
        attrs.set(key, decode(single ?? double ?? '', j));
        j += whole.length;
      }
      while (j < text.length && /\s/.test(text[j]!)) j++;
      const selfClosing = text.startsWith('/>', j);
      if (!selfClosing && text[j] !== '>') fail(`a malformed start tag <${name}`, i);
      const open: Open = { name: name!, attrs, children: [], text: [] };
      if (selfClosing) {
        const element = close(open);
        const parent = stack[stack.length - 1];
        if (parent) parent.children.push(element);
        else top = element;
        i = j + 2;
      } else {
        stack.push(open);
        i = j + 1;
      }
    }
  }
  if (stack.length > 0) fail(`an unclosed <${stack[stack.length - 1]!.name}>`, text.length);
  if (!top) fail('no root element', text.length);
  if (top!.name !== root) {
    throw new XmlParseError(what, `expected a <${root}> root element, found <${top!.name}>`);
  }
  return top!;
}

/** The first child element `name` of `element`. */
export function first(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

/** Every child element `name` of `element`. */
export function all(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? [];
}
