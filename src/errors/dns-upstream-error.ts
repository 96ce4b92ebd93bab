import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * No upstream resolver gave the DNS front a usable answer for a question:
 * none is configured, none answered in time, or each answered an error. The
 * VM's query is answered SERVFAIL; nothing is opened.
 *
 * @example
 * ```
 * no usable answer for pypi.org A from the upstream resolvers: rcode 2 from 198.51.100.53
 * ```
 */
export class DnsUpstreamError extends TicryptNetError {
  /** The name asked for. */
  readonly question: string;
  /** The record type asked for (`A`, `CNAME`). */
  readonly type: string;
  /** Why the last try was of no use. */
  readonly detail: string;

  constructor(question: string, type: string, detail: string) {
    super('E_DNS_UPSTREAM', `no usable answer for ${question} ${type} from the upstream resolvers: ${detail}`);
    this.name = 'DnsUpstreamError';
    this.question = question;
    this.type = type;
    this.detail = detail;
  }
}
