import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerData, query, read, tcp, udp } from './client.js';
import { startTestFront, type TestFront } from './front-fixture.js';

const many = Array.from({ length: 60 }, (_, i) => `151.101.${i}.1`);

describe('DNS front handler and sockets (loopback, fake upstream)', () => {
  let front: TestFront;
  beforeAll(async () => {
    front = await startTestFront(
      {
        'pypi.org': { A: ['151.101.0.223'], ttl: 60 },
        'many.example.org': { A: many },
        'secret.allowed.example': { A: ['151.101.9.9'] },
      },
      [
        { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } },
        { type: 'domain', domain: '*.example.org', protocol: 'tcp' },
        { type: 'domain', domain: 'allowed.example', protocol: 'tcp' },
      ],
    );
  });
  afterAll(async () => front.close());

  it('answers an allowed name over UDP and TCP, with the id and question, RD and RA set', async () => {
    for (const send of [udp, tcp]) {
      const raw = await send(front.port, query('pypi.org', 'A', { id: 777 }));
      const reply = read(raw);
      expect(reply).toMatchObject({ id: 777, rcode: 'NOERROR', flag_rd: true, flag_ra: true, flag_qr: true });
      expect(reply?.questions).toEqual([{ name: 'pypi.org', type: 'A', class: 'IN' }]);
      expect(answerData(raw)).toEqual(['151.101.0.223']);
    }
    expect(front.transactions[0]).toContain('0x00000001 . 151.101.0.223 . tcp . 443 timeout 120s');
  });

  it('answers a denied name NXDOMAIN with an Extended DNS Error to an EDNS client', async () => {
    const reply = read(await udp(front.port, query('other.example', 'A', { edns: 1232 })));
    expect(reply?.rcode).toBe('NXDOMAIN');
    const opt = reply?.additionals?.find((a) => a.type === 'OPT') as { options: { code: number; data: Buffer }[] };
    expect(opt.options[0]?.code).toBe(15);
    expect(opt.options[0]?.data.readUInt16BE(0)).toBe(15);
    expect(opt.options[0]?.data.subarray(2).toString()).toBe("not on this VM's allow-list");
  });

  it('refuses the TXT tunnel and a long label under a wildcard, asking upstream nothing', async () => {
    const before = front.upstream.asked.length;
    expect(read(await udp(front.port, query('secret.allowed.example', 'TXT')))?.rcode).toBe('REFUSED');
    expect(read(await udp(front.port, query(`${'6578'.repeat(15)}.example.org`, 'A')))?.rcode).toBe('REFUSED');
    expect(read(await udp(front.port, query('secret.allowed.example', 'A')))?.rcode).toBe('NXDOMAIN');
    expect(front.upstream.asked.length).toBe(before);
  });

  it('sends an answer too big for the client UDP size truncated, and whole over TCP (at most 32 records)', async () => {
    const small = read(await udp(front.port, query('many.example.org', 'A')));
    expect(small).toMatchObject({ flag_tc: true, answers: [] });
    const edns = read(await udp(front.port, query('many.example.org', 'A', { edns: 4096 })));
    expect(edns?.flag_tc).toBe(false); // the 32 records the front keeps of an answer fit 1232 bytes
    expect(read(await tcp(front.port, query('many.example.org', 'A')))?.answers).toHaveLength(32);
  });

  it('answers garbage with a header FORMERR, short garbage and responses with nothing', async () => {
    const garbage = Buffer.concat([query('pypi.org', 'A').subarray(0, 12), Buffer.from([0xc0, 0x0c, 0xff])]);
    expect(read(await udp(front.port, garbage))).toMatchObject({ rcode: 'FORMERR', questions: [] });
    expect(await udp(front.port, Buffer.from([1, 2, 3]), 300)).toBeUndefined();
    const response = query('pypi.org', 'A');
    response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
    expect(await udp(front.port, response, 300)).toBeUndefined();
  });

  it('answers another opcode NOTIMP and two questions FORMERR', async () => {
    const notify = query('pypi.org', 'A');
    notify.writeUInt16BE((notify.readUInt16BE(2) & ~0x7800) | (4 << 11), 2);
    expect(read(await udp(front.port, notify))?.rcode).toBe('NOTIMP');
    const two = query('pypi.org', 'A');
    two.writeUInt16BE(2, 4);
    const doubled = Buffer.concat([two, two.subarray(12)]);
    expect(read(await udp(front.port, doubled))?.rcode).toBe('FORMERR');
  });

  it('keeps at most 8 TCP connections from one source open', async () => {
    const { connect } = await import('node:net');
    const sockets = Array.from({ length: 10 }, () => connect({ host: '127.0.0.1', port: front.port }));
    const closed = await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<boolean>((resolve) => {
            socket.on('error', () => undefined);
            socket.on('close', () => resolve(true));
            setTimeout(() => resolve(false), 500);
          }),
      ),
    );
    expect(closed.filter(Boolean)).toHaveLength(2);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answerData(await tcp(front.port, query('pypi.org', 'A')))).toEqual(['151.101.0.223']);
  });

  it('counts every outcome', () => {
    const outcomes = new Set(front.handled.map((h) => h.outcome));
    for (const o of ['answered', 'blocked', 'refused_type', 'too_long', 'malformed', 'not_query'] as const) {
      expect(outcomes.has(o), o).toBe(true);
    }
  });
});

describe('DNS front rate limit', () => {
  it('answers a client no more than its rate allows, counting the rest', async () => {
    const front = await startTestFront({ 'pypi.org': { A: ['151.101.0.223'] } }, [], { perSecond: 1, burst: 5 });
    try {
      const replies = await Promise.all(Array.from({ length: 12 }, () => udp(front.port, query('pypi.org', 'A'), 400)));
      expect(replies.filter((r) => r !== undefined)).toHaveLength(5);
      expect(front.handled.filter((h) => h.outcome === 'rate_limited')).toHaveLength(7);
    } finally {
      await front.close();
    }
  });
});
