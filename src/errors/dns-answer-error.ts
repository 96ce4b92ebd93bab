import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The DNS front cannot build an answer to a query it accepted: a CNAME chain
 * that loops or runs too long, or a question name it could not write back as
 * it read it. The VM gets SERVFAIL (or FORMERR); nothing is opened.
 *
 * @example
 * ```
 * cannot answer a.example.org: its CNAME chain loops or is longer than 8
 * ```
 */
export class DnsAnswerError extends TicryptNetError {
  /** The query name, as read. */
  readonly question: string;

  constructor(question: string, why: string) {
    super('E_DNS_ANSWER', `cannot answer ${JSON.stringify(question)}: ${why}`);
    this.name = 'DnsAnswerError';
    this.question = question;
  }
}
