import { describe, expect, it } from 'vitest';
import { NamePolicy, type DomainEntry } from '../../../src/backend/dns/policy.js';
import type { AllowEntry } from '../../../src/protocol/api.js';

const exact: DomainEntry = { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } };
const wild: DomainEntry = { type: 'domain', domain: '*.example.org', protocol: 'tcp' };
const intranet: DomainEntry = {
  type: 'domain',
  domain: 'intranet.example.net',
  protocol: 'tcp',
  specialRanges: ['10.9.0.0/16', '192.168.5.5'],
};
const address: AllowEntry = { type: 'address', address: '203.0.113.10', protocol: 'tcp' };
const policy = NamePolicy.of([exact, wild, intranet, address]);

describe('NamePolicy.judge', () => {
  it.each([
    ['pypi.org', [exact]],
    ['www.example.org', [wild]],
    ['a.b.c.example.org', [wild]],
    ['intranet.example.net', [intranet]],
  ])('allows %j by its entries', (name, entries) => {
    expect(policy.judge(name)).toEqual({ kind: 'allowed', entries });
  });

  it.each([
    ['www.pypi.org', false, 'a name below an exact entry'],
    ['example.org', true, "a wildcard's base (unless named)"],
    ['org', true, 'an ancestor of allowed names'],
    ['example.net', true, 'an ancestor of an exact name'],
    ['other.example', false, 'an unrelated name'],
    ['203.0.113.10', false, 'the address of an address entry'],
  ])('denies %j (ancestor %j): %s', (name, ancestor) => {
    expect(policy.judge(name)).toEqual({ kind: 'denied', ancestor });
  });

  it('allows the base of a wildcard when an exact entry names it too', () => {
    const both = NamePolicy.of([wild, { type: 'domain', domain: 'example.org', protocol: 'any' }]);
    expect(both.judge('example.org').kind).toBe('allowed');
  });

  it('refuses what a wildcard matches beyond its limits: long labels, deep names', () => {
    expect(policy.judge(`${'a'.repeat(40)}.example.org`).kind).toBe('allowed');
    expect(policy.judge(`${'a'.repeat(41)}.example.org`)).toEqual({ kind: 'too-long' });
    expect(policy.judge('a.b.c.d.example.org').kind).toBe('allowed');
    expect(policy.judge('a.b.c.d.e.example.org')).toEqual({ kind: 'too-long' });
    const strict = NamePolicy.of([wild], { label: 8, depth: 1 });
    expect(strict.judge('abcdefgh.example.org').kind).toBe('allowed');
    expect(strict.judge('a.b.example.org')).toEqual({ kind: 'too-long' });
  });

  it('never limits a name an exact entry names', () => {
    const long = `${'a'.repeat(60)}.example.org`;
    const named = NamePolicy.of([wild, { type: 'domain', domain: long, protocol: 'tcp' }]);
    expect(named.judge(long).kind).toBe('allowed');
  });

  it('names nothing without domain entries', () => {
    expect(NamePolicy.of([address]).empty).toBe(true);
    expect(NamePolicy.of([address]).judge('pypi.org')).toEqual({ kind: 'denied', ancestor: false });
  });
});

describe('NamePolicy.opening: special-use answers open nothing unless the entry names their range', () => {
  it.each([
    ['151.101.0.223', [exact, wild]],
    ['10.9.9.9', []],
    ['127.0.0.1', []],
    ['169.254.169.254', []],
    ['100.64.0.1', []],
    ['224.0.0.251', []],
    ['0.0.0.0', []],
    ['255.255.255.255', []],
    ['198.51.100.10', []],
  ])('%s opens for %j', (addressText, entries) => {
    expect(policy.opening([exact, wild], addressText)).toEqual(entries);
  });

  it('opens a special-use address inside the entry own ranges, and only for that entry', () => {
    expect(policy.opening([intranet, exact], '10.9.9.9')).toEqual([intranet]);
    expect(policy.opening([intranet], '192.168.5.5')).toEqual([intranet]);
    expect(policy.opening([intranet], '192.168.5.6')).toEqual([]);
    expect(policy.opening([intranet], '10.10.0.1')).toEqual([]);
  });
});
