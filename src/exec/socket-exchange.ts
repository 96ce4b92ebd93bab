/**
 * One bounded answer read from a socket the caller has already connected and
 * written to (or will write to on connect): settled once, by the first of a
 * complete answer, an error, the connection closing, too large an answer, or
 * the time running out; the socket is destroyed whichever comes first. Shared
 * by the hook's HTTP transport and its ovsdb-server read, both on the path of
 * every VM start and stop.
 * May not: connect, write, or know what the bytes mean (the caller's `parse`).
 */
import type { Socket } from 'node:net';

/** How an exchange reads its answer and which error each way of failing gives. */
export interface ExchangeOptions<T> {
  /** From the call to the last byte, in milliseconds. */
  readonly timeoutMs: number;
  /** The largest answer read, in bytes. */
  readonly maxBytes: number;
  /**
   * Reads the answer so far: a value settles the exchange, `undefined` waits
   * for more (called on every chunk when `eager`, else once at the end of the
   * stream), a throw settles it with that error.
   */
  readonly parse: (answer: Buffer) => T | undefined;
  /** Parse on every chunk (a self-delimiting answer such as JSON-RPC) instead of at the end of the stream. */
  readonly eager?: boolean;
  /** The error for each way the exchange fails. */
  readonly errors: {
    readonly timeout: () => Error;
    readonly tooLarge: () => Error;
    readonly closed: () => Error;
    readonly socket: (error: Error) => Error;
  };
}

/**
 * Reads one answer from `socket` as `options` say.
 *
 * @example const value = await exchange(socket, { timeoutMs: 500, maxBytes: 1 << 20, parse, errors });
 */
export function exchange<T>(socket: Socket, options: ExchangeOptions<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (error: Error | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value as T);
    };
    const read = () => {
      try {
        const value = options.parse(Buffer.concat(chunks));
        if (value !== undefined) finish(undefined, value);
        else if (!options.eager) finish(options.errors.closed());
      } catch (error) {
        finish(error as Error);
      }
    };
    const timer = setTimeout(() => finish(options.errors.timeout()), Math.max(1, options.timeoutMs));
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxBytes) return finish(options.errors.tooLarge());
      chunks.push(chunk);
      if (options.eager) read();
    });
    socket.on('end', () => {
      if (!options.eager) read();
    });
    socket.on('error', (error) => finish(options.errors.socket(error)));
    socket.on('close', () => finish(options.errors.closed()));
  });
}
