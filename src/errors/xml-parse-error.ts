import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * An XML document (a domain or a network definition) could not be read.
 *
 * `what` names the document kind (`domain XML`, `network XML`), `reason` says
 * what was wrong with it.
 */
export class XmlParseError extends TicryptNetError {
  /** The kind of document that was being parsed. */
  readonly what: string;
  /** What was wrong, e.g. `expected a <domain> root element, found <network>`. */
  readonly reason: string;

  constructor(what: string, reason: string, options?: ErrorOptions) {
    super('E_XML_PARSE', `Cannot parse ${what}: ${reason}`, options);
    this.name = 'XmlParseError';
    this.what = what;
    this.reason = reason;
  }
}
