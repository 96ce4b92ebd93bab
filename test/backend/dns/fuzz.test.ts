/**
 * Whatever a VM sends, the front never crashes and never hangs: random and
 * truncated messages at the parser (through the handler, which parses) and at
 * the live UDP and TCP sockets, after which a valid query is still answered.
 */
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import fc from 'fast-check';
import { decode } from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerData, query, tcp, udp } from './client.js';
import { startTestFront, type TestFront } from './front-fixture.js';

const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no result in ${ms} ms`)), ms)),
  ]);

const TYPES = ['A', 'AAAA', 'TXT', 'NULL', 'ANY', 'CNAME', 'MX', 'UNKNOWN_65', 'PTR'];
const arbQuery = fc
  .record({
    labels: fc.array(fc.stringMatching(/^[a-zA-Z0-9_-]{1,20}$/), { minLength: 1, maxLength: 5 }),
    type: fc.constantFrom(...TYPES),
    id: fc.integer({ min: 0, max: 65_535 }),
    edns: fc.option(fc.integer({ min: 0, max: 65_535 }), { nil: undefined }),
  })
  .map(({ labels, type, id, edns }) =>
    query([...labels, 'example.org'].join('.'), type, edns === undefined ? { id } : { id, edns }),
  );

/** A valid query cut short, or with some bytes replaced. */
const arbDamaged = fc.oneof(
  arbQuery.chain((q) => fc.integer({ min: 0, max: q.length - 1 }).map((n) => q.subarray(0, n))),
  arbQuery.chain((q) =>
    fc
      .array(fc.record({ at: fc.integer({ min: 0, max: q.length - 1 }), byte: fc.integer({ min: 0, max: 255 }) }), {
        minLength: 1,
        maxLength: 6,
      })
      .map((edits) => {
        const copy = Buffer.from(q);
        for (const { at, byte } of edits) copy[at] = byte;
        return copy;
      }),
  ),
);
const arbRandom = fc.uint8Array({ minLength: 0, maxLength: 1500 }).map((bytes) => Buffer.from(bytes));

describe('DNS front fuzz', () => {
  let front: TestFront;
  beforeAll(async () => {
    front = await startTestFront({ 'a.example.org': { A: ['151.101.0.1'] } }, [
      { type: 'domain', domain: '*.example.org', protocol: 'tcp' },
    ]);
  });
  afterAll(async () => front.close());

  it('the parser: random, truncated and damaged messages give a well-formed reply or none, at once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(arbRandom, arbDamaged, arbQuery), async (message) => {
        const reply = await within(front.handler.handle('secure', '127.0.0.1', message, 'udp'), 2000);
        if (reply === undefined) return;
        const decoded = decode(reply);
        expect(decoded.type).toBe('response');
        expect(reply.length).toBeLessThanOrEqual(1232);
        expect(decoded.id).toBe(message.readUInt16BE(0));
      }),
      { numRuns: 3000 },
    );
  });

  it('answers a question it cannot write back as read (a dot byte inside a label) with a header only', async () => {
    // Found by the property above: the label "_3KfH_9x_l." would have been echoed as two labels, one empty.
    const message = Buffer.from([
      0, 80, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 5, 45, 95, 75, 81, 51, 9, 55, 76, 95, 45, 118, 113, 95, 45, 45, 2, 45, 55, 1,
      45, 11, 95, 51, 75, 102, 72, 95, 57, 120, 95, 108, 46, 7, 101, 120, 97, 109, 112, 108, 101, 3, 111, 114, 103, 0,
      0, 16, 0, 1, 0, 0, 41, 0, 8, 0, 0, 0, 0, 0, 0,
    ]);
    const reply = await front.handler.handle('secure', '127.0.0.1', message, 'udp');
    expect(decode(reply!)).toMatchObject({ id: 80, type: 'response', questions: [] });
  });

  it('the live sockets: random datagrams and byte streams, then a valid query is still answered', async () => {
    const sender = createSocket('udp4');
    const samples = fc.sample(fc.oneof(arbRandom, arbDamaged), 1500);
    for (const message of samples) sender.send(message, front.port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    sender.close();

    const streams = fc.sample(fc.array(fc.oneof(arbRandom, arbDamaged), { maxLength: 5 }), 60);
    await Promise.all(
      streams.map(
        (parts) =>
          new Promise<void>((resolve) => {
            const socket = connect({ host: '127.0.0.1', port: front.port });
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.on('data', () => undefined);
            socket.on('connect', () => {
              for (const part of parts) {
                const length = Buffer.alloc(2);
                // Sometimes the true length, sometimes any: a short frame, a long one, or one never completed.
                length.writeUInt16BE(part.length % 3 === 0 ? (part.length * 7) & 0xffff : part.length);
                socket.write(Buffer.concat([length, part]));
              }
              setTimeout(() => socket.destroy(), 50 + (parts.length % 3) * 50);
            });
          }),
      ),
    );

    for (const send of [udp, tcp]) {
      expect(answerData(await send(front.port, query('a.example.org', 'A')))).toEqual(['151.101.0.1']);
    }
    expect(front.handled.filter((h) => h.outcome === 'malformed').length).toBeGreaterThan(100);
  });

  it('closes a TCP connection that announces more than a query can be', async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: front.port });
      socket.on('close', () => resolve(true));
      socket.on('error', () => undefined);
      socket.on('connect', () => socket.write(Buffer.from([0xff, 0xff, 1, 2, 3])));
      setTimeout(() => resolve(false), 2000);
    });
    expect(closed).toBe(true);
  });
});
