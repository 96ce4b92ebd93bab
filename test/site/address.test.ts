import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import {
  intToIpv4,
  ipv4ToInt,
  isIpv4,
  isNetworkCidr,
  parseIpv4Cidr,
  prefixToNetmask,
  rangeSize,
  subnetsOverlap,
} from '../../src/site/address.js';
import { generateMac, isUnicastMac } from '../../src/site/mac.js';

describe('IPv4 helpers', () => {
  it.each([
    ['192.168.128.1', true],
    ['0.0.0.0', true],
    ['255.255.255.255', true],
    ['192.168.1', false],
    ['192.168.01.1', false],
    ['256.1.1.1', false],
    ['0x7f.0.0.1', false],
    [' 1.2.3.4', false],
  ])('isIpv4(%j) is %s', (text, valid) => expect(isIpv4(text)).toBe(valid));

  it('converts to and from integers', () => {
    expect(ipv4ToInt('192.168.128.1')).toBe(3232268289);
    expect(intToIpv4(3232268289)).toBe('192.168.128.1');
    expect(intToIpv4(ipv4ToInt('255.255.255.255'))).toBe('255.255.255.255');
  });

  it('parses CIDRs and their bounds', () => {
    expect(parseIpv4Cidr('192.168.128.0/17')).toEqual({
      cidr: '192.168.128.0/17',
      prefix: 17,
      first: ipv4ToInt('192.168.128.0'),
      last: ipv4ToInt('192.168.255.255'),
    });
    expect(parseIpv4Cidr('192.168.128.0/33')).toBeUndefined();
    expect(parseIpv4Cidr('192.168.128.0')).toBeUndefined();
    expect(isNetworkCidr('192.168.128.0/17')).toBe(true);
    expect(isNetworkCidr('192.168.129.0/17')).toBe(false);
    expect(prefixToNetmask(17)).toBe('255.255.128.0');
    expect(prefixToNetmask(0)).toBe('0.0.0.0');
    expect(prefixToNetmask(32)).toBe('255.255.255.255');
  });

  it('tells overlap and range size', () => {
    const a = parseIpv4Cidr('10.0.0.0/8')!;
    const b = parseIpv4Cidr('10.20.0.0/16')!;
    const c = parseIpv4Cidr('11.0.0.0/16')!;
    expect(subnetsOverlap(a, b)).toBe(true);
    expect(subnetsOverlap(a, c)).toBe(false);
    expect(rangeSize('192.168.129.1', '192.168.255.254')).toBe(32510);
    expect(rangeSize('10.0.0.9', '10.0.0.1')).toBe(0);
  });
});

describe('MAC helpers', () => {
  it('generates libvirt-range unicast MACs', () => {
    const mac = generateMac();
    expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(isUnicastMac(mac)).toBe(true);
  });

  it('is deterministic with a seed', () => {
    expect(generateMac('vm-uuid/0')).toBe(generateMac('vm-uuid/0'));
    expect(generateMac('vm-uuid/0')).not.toBe(generateMac('vm-uuid/1'));
  });

  it.each([
    ['52:54:00:12:34:56', true],
    ['52:54:00:AB:CD:EF', true],
    ['01:00:5e:00:00:01', false],
    ['52-54-00-12-34-56', false],
    ['52:54:00:12:34', false],
  ])('isUnicastMac(%j) is %s', (text, valid) => expect(isUnicastMac(text)).toBe(valid));
});

describe('isIpv4 and ipv4ToInt agree with ipaddr.js', () => {
  it('for random strings near the dotted-quad form (property)', () => {
    const part = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.stringMatching(/^0[0-9]{1,2}$/),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.array(part, { minLength: 3, maxLength: 5 }), (parts) => {
        const text = parts.join('.');
        const expected =
          ipaddr.IPv4.isValidFourPartDecimal(text) && text.split('.').every((p) => p === '0' || !p.startsWith('0'));
        expect(isIpv4(text)).toBe(expected);
        if (expected) {
          const bytes = ipaddr.IPv4.parse(text).toByteArray();
          expect(ipv4ToInt(text)).toBe(bytes.reduce((n, b) => n * 256 + b, 0));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
