import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Upstream } from '../../../src/backend/dns/upstream.js';
import { DnsUpstreamError } from '../../../src/errors/dns-upstream-error.js';
import { FakeUpstream } from './fake-upstream.js';

describe('Upstream: queries to the site resolvers', () => {
  let fake: FakeUpstream;
  let second: FakeUpstream;
  beforeAll(async () => {
    fake = await FakeUpstream.start({
      'pypi.org': { A: ['151.101.0.223', '151.101.64.223'], ttl: 60 },
      'www.example.org': { CNAME: 'cdn.example.net' },
      'cdn.example.net': { A: ['203.0.113.7'] },
    });
    second = await FakeUpstream.start({ 'pypi.org': { A: ['151.101.0.1'] } });
  });
  afterAll(async () => {
    await fake.close();
    await second.close();
  });
  const upstream = (quirkyFirst = false) =>
    new Upstream({
      servers: quirkyFirst
        ? [
            { address: '127.0.0.1', port: fake.port },
            { address: '127.0.0.1', port: second.port },
          ]
        : [{ address: '127.0.0.1', port: fake.port }],
      timeoutMs: 200,
      tries: 2,
    });

  it('asks for A records and reads the A and CNAME records back', async () => {
    fake.quirks = {};
    const client = upstream();
    const answer = await client.query('www.example.org', 'A');
    expect(answer.records).toEqual([
      { name: 'www.example.org', type: 'CNAME', ttl: 300, data: 'cdn.example.net' },
      { name: 'cdn.example.net', type: 'A', ttl: 300, data: '203.0.113.7' },
    ]);
    expect((await client.query('nope.example.org', 'A')).negativeTtl).toBe(20);
    client.close();
  });

  it('ignores an answer with the wrong id and takes the right one', async () => {
    fake.quirks = { wrongIdFirst: true };
    const client = upstream();
    expect((await client.query('pypi.org', 'A')).records.map((r) => r.data)).toEqual([
      '151.101.0.223',
      '151.101.64.223',
    ]);
    client.close();
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    fake.quirks = { truncateUdp: true };
    fake.asked.length = 0;
    const client = upstream();
    expect((await client.query('pypi.org', 'A')).records).toHaveLength(2);
    expect(fake.asked).toEqual(['udp A pypi.org', 'tcp A pypi.org']);
    client.close();
  });

  it('moves to the next server when one is silent or fails, and says so when none answers', async () => {
    fake.quirks = { silent: true };
    const client = upstream(true);
    expect((await client.query('pypi.org', 'A')).records.map((r) => r.data)).toEqual(['151.101.0.1']);
    fake.quirks = { rcode: 2 };
    expect((await client.query('pypi.org', 'A')).records.map((r) => r.data)).toEqual(['151.101.0.1']);
    client.close();
    const alone = upstream();
    await expect(alone.query('pypi.org', 'A')).rejects.toThrow(DnsUpstreamError);
    alone.close();
    await expect(new Upstream({ servers: [] }).query('pypi.org', 'A')).rejects.toThrow(/none configured/);
  });
});
