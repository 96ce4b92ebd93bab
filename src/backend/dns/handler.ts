/**
 * One message from a VM to one reply (or none): the rate limit first (before
 * any parsing), then decoding, which may fail on anything (a malformed
 * message gets FORMERR when it has a header, nothing otherwise), then the
 * resolver. Never throws.
 */
import type { RateLimiter } from './rate.js';
import type { DnsResolver, Outcome } from './resolver.js';
import { decodeQuery, encodeReply, headerReply, type DnsQuery, type Reply } from './wire.js';

/** How a message ended, for metrics: a resolver outcome, or the handler's own. */
export type HandlerOutcome = Outcome | 'rate_limited' | 'malformed' | 'not_query';

/** What the handler tells about each message. */
export interface HandledMessage {
  readonly network: string;
  readonly outcome: HandlerOutcome;
  /** Seconds from receipt to reply, for resolved names. */
  readonly seconds?: number;
  readonly cached?: boolean;
  readonly withheld?: number;
}

/** Largest query accepted, in bytes (a query is a header, one question and an OPT record). */
export const MAX_QUERY_BYTES = 1024;

/** Turns VM messages into replies. */
export class DnsHandler {
  constructor(
    private readonly resolver: DnsResolver,
    private readonly rate: RateLimiter,
    private readonly onMessage: (handled: HandledMessage) => void = () => {},
  ) {}

  /** The reply to `message` from `source` on `network` (`udp`: sized to the client's limit), or `undefined`. */
  async handle(
    network: string,
    source: string,
    message: Buffer,
    transport: 'udp' | 'tcp',
  ): Promise<Buffer | undefined> {
    const started = process.hrtime.bigint();
    if (!this.rate.take(`${network}/${source}`)) {
      this.onMessage({ network, outcome: 'rate_limited' });
      return undefined;
    }
    let query: DnsQuery | undefined;
    try {
      if (message.length <= MAX_QUERY_BYTES) query = decodeQuery(message);
    } catch {
      query = undefined;
    }
    if (query === undefined) {
      this.onMessage({ network, outcome: 'malformed' });
      return headerReply(message, 'FORMERR');
    }
    if (query.isResponse) {
      this.onMessage({ network, outcome: 'malformed' });
      return undefined;
    }
    const question = query.questions[0];
    if (query.opcode !== 0 || question === undefined || query.questions.length !== 1) {
      this.onMessage({ network, outcome: 'not_query' });
      return this.encode(message, query, { rcode: query.opcode !== 0 ? 'NOTIMP' : 'FORMERR', records: [] }, transport);
    }
    const resolution = await this.resolver.resolve(network, source, question);
    const reply = this.encode(message, query, resolution.reply, transport);
    this.onMessage({
      network,
      outcome: resolution.outcome,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      withheld: resolution.withheld,
      ...(resolution.cached === undefined ? {} : { cached: resolution.cached }),
    });
    return reply;
  }

  private encode(message: Buffer, query: DnsQuery, reply: Reply, transport: 'udp' | 'tcp'): Buffer | undefined {
    const size = transport === 'tcp' ? 65_535 : Math.max(512, Math.min(query.ednsSize ?? 512, 1232));
    try {
      return encodeReply(query, reply, size);
    } catch {
      // A question dns-packet read but cannot write back (an odd class or type name): answer the header.
      return headerReply(message, reply.rcode);
    }
  }
}
