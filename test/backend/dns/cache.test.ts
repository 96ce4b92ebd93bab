import { describe, expect, it } from 'vitest';
import { ResolverCache, type LookupSource } from '../../../src/backend/dns/cache.js';
import type { DnsRecord, UpstreamAnswer } from '../../../src/backend/dns/wire.js';

function source(answers: Record<string, { rcode?: number; records?: DnsRecord[]; negativeTtl?: number }>) {
  const asked: string[] = [];
  const src: LookupSource = {
    async query(name, type) {
      asked.push(`${type} ${name}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const a = answers[name];
      if (a === undefined) throw new Error('no answer');
      return {
        id: 1,
        isResponse: true,
        truncated: false,
        rcode: a.rcode ?? 0,
        question: { name, type },
        records: a.records ?? [],
        negativeTtl: a.negativeTtl,
      } satisfies UpstreamAnswer;
    },
  };
  return { src, asked };
}

const A = (name: string, data: string, ttl: number): DnsRecord => ({ name, type: 'A', ttl, data });

describe('ResolverCache', () => {
  it('answers from the cache until the smallest TTL runs out, counting TTLs down', async () => {
    let now = 1_000_000;
    const { src, asked } = source({ 'pypi.org': { records: [A('pypi.org', '151.101.0.223', 60)] } });
    const cache = new ResolverCache(src, { now: () => now });
    expect(await cache.lookup('pypi.org', 'A')).toMatchObject({ cached: false, records: [{ ttl: 60 }] });
    now += 20_000;
    expect(await cache.lookup('pypi.org', 'A')).toMatchObject({ cached: true, records: [{ ttl: 40 }] });
    now += 40_000;
    expect(await cache.lookup('pypi.org', 'A')).toMatchObject({ cached: false, records: [{ ttl: 60 }] });
    expect(asked).toEqual(['A pypi.org', 'A pypi.org']);
  });

  it('caps TTLs, handed out and kept', async () => {
    const { src } = source({ 'pypi.org': { records: [A('pypi.org', '151.101.0.223', 86_400)] } });
    const cache = new ResolverCache(src, { ttlCap: 300 });
    expect((await cache.lookup('pypi.org', 'A')).records[0]?.ttl).toBe(300);
  });

  it('keeps a negative answer for its SOA TTL, capped, and never a TTL-0 answer', async () => {
    let now = 0;
    const { src, asked } = source({
      'nope.example': { rcode: 3, negativeTtl: 3600 },
      'zero.example': { records: [A('zero.example', '203.0.113.9', 0)] },
    });
    const cache = new ResolverCache(src, { now: () => now, negativeTtlCap: 60 });
    expect((await cache.lookup('nope.example', 'A')).rcode).toBe('NXDOMAIN');
    now += 59_000;
    expect((await cache.lookup('nope.example', 'A')).cached).toBe(true);
    now += 2_000;
    expect((await cache.lookup('nope.example', 'A')).cached).toBe(false);
    await cache.lookup('zero.example', 'A');
    expect((await cache.lookup('zero.example', 'A')).cached).toBe(false);
    expect(asked).toEqual(['A nope.example', 'A nope.example', 'A zero.example', 'A zero.example']);
  });

  it('shares one upstream query between concurrent misses, and caches no failure', async () => {
    const { src, asked } = source({ 'pypi.org': { records: [A('pypi.org', '151.101.0.223', 60)] } });
    const cache = new ResolverCache(src);
    const all = await Promise.all(Array.from({ length: 20 }, () => cache.lookup('pypi.org', 'A')));
    expect(all.filter((l) => !l.cached)).toHaveLength(20); // all waited for the one query
    expect(asked).toEqual(['A pypi.org']);
    await expect(cache.lookup('down.example', 'A')).rejects.toThrow('no answer');
    await expect(cache.lookup('down.example', 'A')).rejects.toThrow('no answer');
    expect(asked).toEqual(['A pypi.org', 'A down.example', 'A down.example']);
  });

  it('keeps at most `max` answers', async () => {
    const answers = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`n${i}.example`, { records: [A(`n${i}.example`, '203.0.113.1', 60)] }]),
    );
    const cache = new ResolverCache(source(answers).src, { max: 3 });
    for (let i = 0; i < 10; i += 1) await cache.lookup(`n${i}.example`, 'A');
    expect(cache.size).toBe(3);
  });
});
