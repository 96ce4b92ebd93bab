/**
 * A small authoritative-looking resolver on loopback for unit tests of the
 * front's upstream side (the lab tests use a real dnsmasq): answers A and
 * CNAME questions from a record table, counts what it was asked, and can be
 * told to misbehave (no answer, a wrong id, truncation).
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { decode, encode, TRUNCATED_RESPONSE, type Answer } from 'dns-packet';

/** `name -> records`: `A` addresses or one `CNAME` target. */
export type Zone = Record<string, { A?: string[]; CNAME?: string; ttl?: number }>;

/** How the fake misbehaves. */
export interface Quirks {
  /** Answer nothing. */
  silent?: boolean;
  /** Answer first with a wrong id, then with the right one. */
  wrongIdFirst?: boolean;
  /** Answer UDP truncated (TC), full over TCP. */
  truncateUdp?: boolean;
  /** rcode to answer with instead. */
  rcode?: number;
}

/** A fake upstream on 127.0.0.1, UDP and TCP on one random port. */
export class FakeUpstream {
  readonly asked: string[] = [];
  quirks: Quirks = {};

  private constructor(
    private readonly udp: Socket,
    private readonly tcp: Server,
    readonly port: number,
    public zone: Zone,
  ) {}

  static async start(zone: Zone): Promise<FakeUpstream> {
    let udp = createSocket('udp4');
    let tcp = createServer();
    // UDP takes a free port; TCP the same one, which may be taken for TCP: then both try another.
    for (let attempt = 1; ; attempt += 1) {
      await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
      const listening = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(udp.address().port, '127.0.0.1', () => resolve(true));
      });
      if (listening) break;
      if (attempt >= 5) throw new Error('no port free for both UDP and TCP');
      udp.close();
      udp = createSocket('udp4');
      tcp = createServer();
    }
    const port = udp.address().port;
    const fake = new FakeUpstream(udp, tcp, port, zone);
    udp.on('message', (message, from) => {
      for (const reply of fake.answer(message, 'udp')) udp.send(reply, from.port, from.address);
    });
    tcp.on('connection', (socket) => {
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
        const [reply] = fake.answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), 'tcp');
        if (reply === undefined) return;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.length);
        socket.end(Buffer.concat([length, reply]));
      });
      socket.on('error', () => undefined);
    });
    return fake;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }

  private answer(message: Buffer, transport: 'udp' | 'tcp'): Buffer[] {
    const query = decode(message);
    const question = query.questions?.[0];
    if (question === undefined) return [];
    this.asked.push(`${transport} ${question.type} ${question.name}`);
    if (this.quirks.silent === true) return [];
    const answers: Answer[] = [];
    let name = question.name.toLowerCase();
    for (let hop = 0; hop < 10; hop += 1) {
      const entry = this.zone[name];
      if (entry === undefined) break;
      const ttl = entry.ttl ?? 300;
      if (entry.CNAME !== undefined) {
        answers.push({ type: 'CNAME', name, ttl, class: 'IN', data: entry.CNAME });
        if (question.type === 'CNAME') break;
        name = entry.CNAME;
        continue;
      }
      if (question.type === 'A')
        for (const a of entry.A ?? []) answers.push({ type: 'A', name, ttl, class: 'IN', data: a });
      break;
    }
    const known = this.zone[question.name.toLowerCase()] !== undefined;
    const truncated = transport === 'udp' && this.quirks.truncateUdp === true;
    const reply = (id: number) =>
      encode({
        type: 'response',
        id,
        flags: (this.quirks.rcode ?? (known ? 0 : 3)) | (truncated ? TRUNCATED_RESPONSE : 0),
        questions: [question],
        answers: truncated ? [] : answers,
        authorities: known
          ? []
          : [
              {
                type: 'SOA',
                name: 'example',
                ttl: 30,
                class: 'IN',
                data: {
                  mname: 'ns.example',
                  rname: 'h.example',
                  serial: 1,
                  refresh: 1,
                  retry: 1,
                  expire: 1,
                  minimum: 20,
                },
              },
            ],
      });
    const id = query.id ?? 0;
    return this.quirks.wrongIdFirst === true ? [reply((id + 1) & 0xffff), reply(id)] : [reply(id)];
  }
}
