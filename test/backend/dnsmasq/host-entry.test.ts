import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  hostEntryFileName,
  macFromHostEntryFileName,
  renderHostEntry,
} from '../../../src/backend/dnsmasq/host-entry.js';
import { DnsmasqInputError } from '../../../src/errors/dnsmasq-error.js';
import { findNetwork } from '../../../src/site/lookup.js';
import { defaultSite } from '../../../src/site/parse.js';
import { arbMac } from '../../support/arbitraries.js';

const secure = findNetwork(defaultSite(), 'secure');

describe('renderHostEntry', () => {
  it('is one dhcp-host line matching on the MAC alone', () => {
    expect(renderHostEntry({ mac: '52:54:00:12:34:56', ip: '192.168.129.7' })).toBe(
      '52:54:00:12:34:56,id:*,192.168.129.7\n',
    );
    expect(renderHostEntry({ mac: '52:54:00:12:34:56', ip: '192.168.129.7' }, secure)).toBe(
      '52:54:00:12:34:56,id:*,192.168.129.7\n',
    );
  });

  it.each([
    [{ mac: '52:54:00:12:34:5G', ip: '192.168.129.7' }, 'registration.mac'],
    [{ mac: '52:54:00:AB:34:56', ip: '192.168.129.7' }, 'registration.mac'],
    [{ mac: '01:00:5e:00:00:01', ip: '192.168.129.7' }, 'registration.mac'],
    [{ mac: '52:54:00:12:34:56\n', ip: '192.168.129.7' }, 'registration.mac'],
    [{ mac: '52:54:00:12:34:56', ip: '192.168.129.7,ignore' }, 'registration.ip'],
    [{ mac: '52:54:00:12:34:56', ip: '192.168.129.07' }, 'registration.ip'],
    [{ mac: '52:54:00:12:34:56', ip: '10.0.0.7' }, 'registration.ip'],
    [{ mac: '52:54:00:12:34:56', ip: '192.168.128.1' }, 'registration.ip'],
    [{ mac: '52:54:00:12:34:56', ip: '192.168.128.0' }, 'registration.ip'],
    [{ mac: '52:54:00:12:34:56', ip: '192.168.255.255' }, 'registration.ip'],
  ])('refuses %j', (registration, field) => {
    const action = () => renderHostEntry(registration, secure);
    expect(action).toThrow(DnsmasqInputError);
    expect(action).toThrow(new RegExp(`^dnsmasq input ${field.replace('.', '\\.')}: expected`));
  });
});

describe('host entry file names', () => {
  it('are the MAC with dashes', () => {
    expect(hostEntryFileName('52:54:00:12:34:56')).toBe('52-54-00-12-34-56');
    expect(() => hostEntryFileName('../../etc/passwd')).toThrow(DnsmasqInputError);
  });

  it('round-trip, and nothing else is taken for one', () => {
    fc.assert(
      fc.property(arbMac, (mac) => {
        const lower = mac.toLowerCase();
        const name = hostEntryFileName(lower);
        expect(name).toMatch(/^[0-9a-f-]{17}$/);
        expect(macFromHostEntryFileName(name)).toBe(lower);
      }),
    );
    for (const stray of ['.52-54-00-12-34-56.1.ab.tmp', '52-54-00-12-34-56~', 'README', '52:54:00:12:34:56']) {
      expect(macFromHostEntryFileName(stray)).toBeUndefined();
    }
  });
});
