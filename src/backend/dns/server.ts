/**
 * The DNS front's sockets on one address: UDP, and TCP (RFC 7766: two-byte
 * length, several queries per connection, replies as they are ready), each
 * message handed to a handler. Bounded: connections, bytes waiting per
 * connection, queries in flight per connection, idle time.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';

/** Answers one message from `source` (`undefined`: no reply). Must not throw. */
export type MessageHandler = (source: string, message: Buffer, transport: 'udp' | 'tcp') => Promise<Buffer | undefined>;

/** Limits of a {@link DnsServer}. */
export interface DnsServerOptions {
  readonly address: string;
  /** Default 53. */
  readonly port?: number;
  /** Open TCP connections at most. Default 256. */
  readonly maxConnections?: number;
  /** Open TCP connections at most from one source address (one VM cannot hold them all). Default 8. */
  readonly maxConnectionsPerSource?: number;
  /** A TCP connection idle this long is closed (ms). Default 10,000. */
  readonly idleMs?: number;
  /** Queries in flight per TCP connection before it is read no further. Default 16. */
  readonly maxInFlight?: number;
  /** Largest TCP message accepted (a query); a longer length prefix closes the connection. Default 1024. */
  readonly maxMessage?: number;
}

/** UDP and TCP on one address and port. */
export class DnsServer {
  private udp: Socket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<TcpSocket>();
  private readonly perSource = new Map<string, number>();

  constructor(
    private readonly options: DnsServerOptions,
    private readonly handler: MessageHandler,
  ) {}

  /** Bind both sockets; rejects (having bound neither) when either cannot be bound. */
  async listen(): Promise<void> {
    // Port 0 (tests): TCP takes the port UDP was given, which another program may hold for TCP: try again.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.bind();
        return;
      } catch (error) {
        if ((this.options.port ?? 53) !== 0 || attempt >= 5) throw error;
      }
    }
  }

  private async bind(): Promise<void> {
    const port = this.options.port ?? 53;
    const udp = createSocket({ type: 'udp4' });
    udp.on('message', (message, from) => {
      this.handler(from.address, message, 'udp').then(
        (reply) => {
          if (reply !== undefined) udp.send(reply, from.port, from.address);
        },
        () => undefined, // a handler must not throw; if one did, that message gets no reply
      );
    });
    udp.on('error', () => undefined);
    const tcp = createServer((socket) => this.accept(socket));
    tcp.maxConnections = this.options.maxConnections ?? 256;
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: this.options.address, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(
          { host: this.options.address, port: port === 0 ? udp.address().port : port, exclusive: true },
          () => {
            tcp.off('error', reject);
            resolve();
          },
        );
      });
    } catch (error) {
      udp.close();
      tcp.close();
      throw error;
    }
    this.udp = udp;
    this.tcp = tcp;
  }

  /** The bound UDP port (tests bind port 0). */
  get port(): number | undefined {
    return this.udp?.address().port;
  }

  /** Close both sockets and every connection. */
  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    const tcp = this.tcp;
    this.tcp = undefined;
    await new Promise<void>((resolve) => (tcp ? tcp.close(() => resolve()) : resolve()));
    const udp = this.udp;
    this.udp = undefined;
    await new Promise<void>((resolve) => (udp ? udp.close(() => resolve()) : resolve()));
  }

  private accept(socket: TcpSocket): void {
    const source = socket.remoteAddress ?? '';
    const open = (this.perSource.get(source) ?? 0) + 1;
    if (open > (this.options.maxConnectionsPerSource ?? 8)) {
      socket.destroy();
      return;
    }
    this.perSource.set(source, open);
    const maxMessage = this.options.maxMessage ?? 1024;
    const maxInFlight = this.options.maxInFlight ?? 16;
    let buffered: Buffer = Buffer.alloc(0);
    let inFlight = 0;
    this.connections.add(socket);
    socket.setTimeout(this.options.idleMs ?? 10_000, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.connections.delete(socket);
      const left = (this.perSource.get(source) ?? 1) - 1;
      if (left > 0) this.perSource.set(source, left);
      else this.perSource.delete(source);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (length === 0 || length > maxMessage) {
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + length) break;
        const message = Buffer.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        inFlight += 1;
        if (inFlight >= maxInFlight) socket.pause();
        const done = (reply: Buffer | undefined) => {
          inFlight -= 1;
          if (socket.isPaused() && inFlight < maxInFlight) socket.resume();
          if (reply === undefined || socket.destroyed) return;
          const length = Buffer.alloc(2);
          length.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([length, reply]));
        };
        this.handler(source, message, 'tcp').then(done, () => done(undefined));
      }
      if (buffered.length > maxMessage + 2) socket.destroy();
    });
  }
}
