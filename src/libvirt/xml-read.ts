import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { XmlParseError } from '../errors/xml-parse-error.js';

/** A parsed XML element: attributes under `@_name`, children by tag, text under `#text`. */
export type XmlNode = Record<string, unknown>;

/** Elements that may repeat and are always read as lists. */
const LISTS = new Set(['interface', 'tag', 'portgroup']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => LISTS.has(name),
});

/**
 * Parse an XML document and return its root element, checking it is `root`.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when the text is not well-formed XML
 * or its root element is another.
 */
export function readXmlRoot(text: string, root: string, what: string): XmlNode {
  if (typeof text !== 'string' || text.trim() === '') throw new XmlParseError(what, 'expected XML, found empty input');
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new XmlParseError(what, `expected well-formed XML, found ${valid.err.msg} at line ${valid.err.line}`);
  }
  let document: XmlNode;
  try {
    document = parser.parse(text) as XmlNode;
  } catch (error) {
    throw new XmlParseError(what, `expected well-formed XML, found ${(error as Error).message}`, { cause: error });
  }
  const roots = Object.keys(document).filter((key) => !key.startsWith('?'));
  const node = document[root];
  if (roots.length !== 1 || !isNode(node)) {
    throw new XmlParseError(
      what,
      `expected a <${root}> root element, found ${roots.map((r) => `<${r}>`).join(', ') || 'none'}`,
    );
  }
  return node;
}

/** Whether a parsed value is an element (not text, not a list). */
export function isNode(value: unknown): value is XmlNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The child element `name` of `node`, if it is a single element. */
export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  const value = node?.[name];
  if (isNode(value)) return value;
  // An empty element like <source/> parses as the empty string.
  return value === '' ? {} : undefined;
}

/** The children `name` of `node` that are elements (for the repeatable ones in LISTS). */
export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = node?.[name];
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.map((item) => (item === '' ? {} : item)).filter(isNode);
}

/** The attribute `name` of `node` as a string, if present. */
export function attr(node: XmlNode | undefined, name: string): string | undefined {
  const value = node?.[`@_${name}`];
  return typeof value === 'string' ? value : undefined;
}

/** The text content of the child element `name`, if it is text. */
export function childText(node: XmlNode | undefined, name: string): string | undefined {
  const value = node?.[name];
  if (typeof value === 'string') return value;
  if (isNode(value) && typeof value['#text'] === 'string') return value['#text'];
  return undefined;
}
