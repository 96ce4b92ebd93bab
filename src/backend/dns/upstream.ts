/**
 * Queries to the site's resolvers (`backend.upstreamDns`): UDP from a few
 * sockets on random ports with random ids, each answer checked against the
 * server, id and question it answers; TCP when an answer comes truncated; the
 * next server when one does not answer in time or fails.
 */
import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { DnsUpstreamError } from '../../errors/dns-upstream-error.js';
import { decodeUpstream, encodeQuery, RCODES, type UpstreamAnswer } from './wire.js';

/** A resolver to forward to. */
export interface UpstreamServer {
  readonly address: string;
  /** Default 53. */
  readonly port?: number;
}

/** How {@link Upstream} asks. */
export interface UpstreamOptions {
  readonly servers: readonly UpstreamServer[];
  /** Milliseconds to wait for one server before the next try. Default 1000. */
  readonly timeoutMs?: number;
  /** Tries in all, rotating through the servers. Default 3. */
  readonly tries?: number;
  /** UDP sockets (source ports) to spread queries over. Default 4. */
  readonly sockets?: number;
}

interface Pending {
  readonly server: UpstreamServer;
  readonly name: string;
  readonly type: 'A' | 'CNAME';
  readonly done: (answer: UpstreamAnswer | undefined) => void;
}

/**
 * The site's resolvers, asked for A and CNAME records only.
 *
 * @example
 * const upstream = new Upstream({ servers: [{ address: '198.51.100.53' }] });
 * const answer = await upstream.query('pypi.org', 'A');
 */
export class Upstream {
  private readonly sockets: Socket[] = [];
  private readonly pending = new Map<string, Pending>();
  private ready: Promise<void> | undefined;
  private next = 0;

  constructor(private readonly options: UpstreamOptions) {}

  /** Ask for `name`/`type`; resolves with the first usable answer, rejects with {@link DnsUpstreamError}. */
  async query(name: string, type: 'A' | 'CNAME'): Promise<UpstreamAnswer> {
    const servers = this.options.servers;
    if (servers.length === 0) throw new DnsUpstreamError(name, type, 'none configured (site backend.upstreamDns)');
    await this.open();
    const tries = this.options.tries ?? 3;
    const first = this.next;
    this.next = (this.next + 1) % servers.length;
    let last = 'no answer';
    for (let attempt = 0; attempt < tries; attempt += 1) {
      const server = servers[(first + attempt) % servers.length] as UpstreamServer;
      let answer = await this.udp(server, name, type);
      if (answer?.truncated === true) answer = await this.tcp(server, name, type).catch(() => undefined);
      if (answer === undefined) continue;
      if (answer.rcode === RCODES.NOERROR || answer.rcode === RCODES.NXDOMAIN) return answer;
      last = `rcode ${answer.rcode} from ${server.address}`;
    }
    throw new DnsUpstreamError(name, type, last);
  }

  /** Close the sockets (pending queries fail). */
  close(): void {
    for (const pending of this.pending.values()) pending.done(undefined);
    this.pending.clear();
    for (const socket of this.sockets.splice(0)) socket.close();
    this.ready = undefined;
  }

  private open(): Promise<void> {
    this.ready ??= Promise.all(
      Array.from({ length: this.options.sockets ?? 4 }, (_, index) => {
        const socket = createSocket('udp4');
        socket.on('message', (message, from) => this.onMessage(index, message, from.address, from.port));
        socket.on('error', () => undefined);
        this.sockets.push(socket);
        return new Promise<void>((resolve) => socket.bind(0, resolve));
      }),
    ).then(() => undefined);
    return this.ready;
  }

  private udp(server: UpstreamServer, name: string, type: 'A' | 'CNAME'): Promise<UpstreamAnswer | undefined> {
    const index = randomInt(this.sockets.length);
    const socket = this.sockets[index] as Socket;
    let id = randomInt(65_536);
    while (this.pending.has(`${index}/${id}`)) id = randomInt(65_536);
    const key = `${index}/${id}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), this.options.timeoutMs ?? 1000);
      const done = (answer: UpstreamAnswer | undefined) => {
        clearTimeout(timer);
        this.pending.delete(key);
        resolve(answer);
      };
      this.pending.set(key, { server, name, type, done });
      socket.send(encodeQuery(id, name, type), server.port ?? 53, server.address, (error) => {
        if (error) done(undefined);
      });
    });
  }

  private onMessage(index: number, message: Buffer, address: string, port: number): void {
    if (message.length < 12) return;
    const pending = this.pending.get(`${index}/${message.readUInt16BE(0)}`);
    if (pending === undefined || pending.server.address !== address || (pending.server.port ?? 53) !== port) return;
    let answer: UpstreamAnswer;
    try {
      answer = decodeUpstream(message);
    } catch {
      return; // not an answer: keep waiting for one until the timeout
    }
    if (answers(answer, pending.name, pending.type)) pending.done(answer);
  }

  private tcp(server: UpstreamServer, name: string, type: 'A' | 'CNAME'): Promise<UpstreamAnswer | undefined> {
    const id = randomInt(65_536);
    const query = encodeQuery(id, name, type);
    return new Promise((resolve) => {
      const socket = connect({ host: server.address, port: server.port ?? 53 });
      let received = Buffer.alloc(0);
      const finish = (answer: UpstreamAnswer | undefined) => {
        socket.destroy();
        resolve(answer);
      };
      socket.setTimeout(this.options.timeoutMs ?? 1000, () => finish(undefined));
      socket.on('error', () => finish(undefined));
      socket.on('close', () => finish(undefined));
      socket.on('connect', () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(query.length);
        socket.write(Buffer.concat([length, query]));
      });
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
        try {
          const answer = decodeUpstream(received.subarray(2, 2 + received.readUInt16BE(0)));
          finish(answer.id === id && answers(answer, name, type) ? answer : undefined);
        } catch {
          finish(undefined);
        }
      });
    });
  }
}

/** Whether `answer` is a response to exactly this question. */
function answers(answer: UpstreamAnswer, name: string, type: string): boolean {
  const question = answer.question;
  return (
    answer.isResponse &&
    question !== undefined &&
    question.name.toLowerCase().replace(/\.$/, '') === name &&
    question.type === type &&
    (question.class ?? 'IN') === 'IN'
  );
}
