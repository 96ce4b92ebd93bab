/** A DNS client for unit tests: one query over UDP or TCP to 127.0.0.1, raw bytes or a packet. */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { decode, encode, RECURSION_DESIRED, type Answer, type DecodedPacket } from 'dns-packet';

/** A query for `name`/`type`, with an OPT record when `edns` is given. */
export function query(name: string, type: string, options: { id?: number; edns?: number } = {}): Buffer {
  return encode({
    type: 'query',
    id: options.id ?? 4242,
    flags: RECURSION_DESIRED,
    questions: [{ type: type as 'A', name, class: 'IN' }],
    additionals:
      options.edns === undefined
        ? []
        : [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: options.edns,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
            } as Answer,
          ],
  });
}

/** Send `message` over UDP; the reply, or `undefined` after `ms`. */
export function udp(port: number, message: Buffer, ms = 1000): Promise<Buffer | undefined> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), ms);
    const done = (reply: Buffer | undefined) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    socket.on('message', (reply) => done(reply));
    socket.send(message, port, '127.0.0.1');
  });
}

/** Send `message` framed over TCP; the reply, or `undefined` after `ms` or when the server closes. */
export function tcp(port: number, message: Buffer, ms = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => done(undefined), ms);
    const done = (reply: Buffer | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.write(Buffer.concat([length, message]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        done(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      }
    });
  });
}

/** Decode a reply, with its rcode and answers' data. */
export function read(reply: Buffer | undefined): (DecodedPacket & { rcode?: string }) | undefined {
  return reply === undefined ? undefined : (decode(reply) as DecodedPacket & { rcode?: string });
}

/** The data of a reply's answers (addresses, alias targets). */
export function answerData(reply: Buffer | undefined): unknown[] {
  return (read(reply)?.answers ?? []).map((a) => ('data' in a ? a.data : undefined));
}
