import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { exchange, type ExchangeOptions } from '../../src/exec/socket-exchange.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((done) => (server ? server.close(() => done()) : done())));

/** A loopback server that answers every connection with `reply`, then the socket the client gets. */
async function answering(reply: (peer: Socket) => void): Promise<Socket> {
  server = createServer(reply);
  await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return connect({ host: '127.0.0.1', port });
}

const errors: ExchangeOptions<string>['errors'] = {
  timeout: () => new Error('timeout'),
  tooLarge: () => new Error('too large'),
  closed: () => new Error('closed'),
  socket: (error) => new Error(`socket: ${error.message}`),
};
const text = (raw: Buffer) => raw.toString('utf8');

describe('exchange', () => {
  it('reads to the end of the stream and parses once', async () => {
    const socket = await answering((peer) => {
      peer.write('hel');
      setTimeout(() => peer.end('lo'), 20);
    });
    await expect(exchange(socket, { timeoutMs: 2000, maxBytes: 100, parse: text, errors })).resolves.toBe('hello');
    expect(socket.destroyed).toBe(true);
  });

  it('settles eagerly on the first complete answer, with the connection still open', async () => {
    const socket = await answering((peer) => {
      peer.write('{"a":');
      setTimeout(() => peer.write('1}'), 20);
    });
    const parse = (raw: Buffer) => {
      try {
        return JSON.stringify(JSON.parse(raw.toString('utf8')));
      } catch {
        return undefined;
      }
    };
    await expect(exchange(socket, { timeoutMs: 2000, maxBytes: 100, eager: true, parse, errors })).resolves.toBe(
      '{"a":1}',
    );
    expect(socket.destroyed).toBe(true);
  });

  it.each([
    ['timeout', (peer: Socket) => peer.write('x'), 100, 'timeout'],
    ['too large', (peer: Socket) => peer.end('x'.repeat(200)), 2000, 'too large'],
    ['closed', (peer: Socket) => peer.destroy(), 2000, 'closed'],
  ] as const)('fails with the caller error on %s', async (_, reply, timeoutMs, message) => {
    const socket = await answering(reply);
    const eagerNever = () => undefined;
    await expect(
      exchange(socket, { timeoutMs, maxBytes: 100, eager: true, parse: eagerNever, errors }),
    ).rejects.toThrow(message);
    expect(socket.destroyed).toBe(true);
  });

  it('gives the parse error when the whole answer does not parse', async () => {
    const socket = await answering((peer) => peer.end('junk'));
    const parse = () => {
      throw new Error('malformed');
    };
    await expect(exchange(socket, { timeoutMs: 2000, maxBytes: 100, parse, errors })).rejects.toThrow('malformed');
  });

  it('maps a socket error', async () => {
    const socket = connect({ path: '/nonexistent/socket' });
    await expect(exchange(socket, { timeoutMs: 2000, maxBytes: 100, parse: text, errors })).rejects.toThrow(
      /^socket: /,
    );
  });
});
