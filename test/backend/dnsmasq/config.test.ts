import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderDnsmasqConfig, type DnsmasqConfigOptions } from '../../../src/backend/dnsmasq/config.js';
import { DnsmasqInputError } from '../../../src/errors/dnsmasq-error.js';
import { findNetwork } from '../../../src/site/lookup.js';
import type { Network, Site } from '../../../src/site/model.js';
import { defaultSite, parseSite } from '../../../src/site/parse.js';
import { arbSiteInput } from '../../support/arbitraries.js';

const paths: DnsmasqConfigOptions = {
  hostsDir: '/var/lib/ticrypt-net/dnsmasq/secure/hosts',
  leaseFile: '/var/lib/ticrypt-net/dnsmasq/secure/leases',
  pidFile: '/run/ticrypt-net/dnsmasq-secure.pid',
};
const upstream = parseSite({ backend: { upstreamDns: ['198.51.100.53', '203.0.113.53'] } });

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

function render(site: Site, name: string, options: Partial<DnsmasqConfigOptions> = {}): string[] {
  return lines(renderDnsmasqConfig(site, findNetwork(site, name), { ...paths, ...options }));
}

function thrown(action: () => unknown): DnsmasqInputError {
  try {
    action();
  } catch (error) {
    if (error instanceof DnsmasqInputError) return error;
    throw error;
  }
  throw new Error('expected a DnsmasqInputError, nothing was thrown');
}

describe('renderDnsmasqConfig: the default secure network', () => {
  const config = render(defaultSite(), 'secure');

  it('serves only its gateway interface and address', () => {
    expect(config).toEqual(
      expect.arrayContaining([
        'interface=bond0.1081',
        'except-interface=lo',
        'bind-dynamic',
        'listen-address=192.168.128.1',
      ]),
    );
  });

  it('gives DHCP to known MACs only, router and DNS the gateway', () => {
    expect(config).toEqual(
      expect.arrayContaining([
        'dhcp-range=192.168.129.1,static,255.255.128.0,12h',
        'dhcp-ignore=tag:!known',
        'dhcp-authoritative',
        'dhcp-option=option:router,192.168.128.1',
        'dhcp-option=option:dns-server,192.168.128.1',
        `dhcp-hostsdir=${paths.hostsDir}`,
        `dhcp-leasefile=${paths.leaseFile}`,
        `pid-file=${paths.pidFile}`,
        'no-hosts',
        'log-facility=-',
      ]),
    );
    expect(config.some((line) => line.startsWith('dhcp-range=') && !line.includes(',static,'))).toBe(false);
  });

  it('raises dhcp-lease-max above the size of the /17 range (dnsmasq defaults to 1000)', () => {
    const max = Number(config.find((line) => line.startsWith('dhcp-lease-max='))?.split('=')[1]);
    expect(findNetwork(defaultSite(), 'secure').dhcp.size).toBe(32510);
    expect(max).toBeGreaterThanOrEqual(32510);
  });

  it('serves no DNS on a controlled network: the DNS front answers there', () => {
    expect(config).toContain('port=0');
    expect(render(upstream, 'secure').filter((line) => /^(server|nftset|address|no-resolv)/.test(line))).toEqual([]);
    expect(config).toContain('dhcp-option=option:dns-server,192.168.128.1');
  });
});

describe('renderDnsmasqConfig: open DNS networks', () => {
  it.each(['service', 'datain'])('%s forwards everything to the upstream resolvers', (name) => {
    const config = render(upstream, name);
    expect(config).toEqual(expect.arrayContaining(['no-resolv', 'server=198.51.100.53', 'server=203.0.113.53']));
    expect(config).not.toContain('port=0');
    expect(config.some((line) => line.startsWith('address=') || line.startsWith('nftset='))).toBe(false);
    expect(config.some((line) => line.startsWith('server=/'))).toBe(false);
  });

  it('falls back to resolv.conf when the site names no upstream', () => {
    const config = render(defaultSite(), 'service');
    expect(config).not.toContain('no-resolv');
    expect(config.some((line) => line.startsWith('server='))).toBe(false);
  });

  it('service gets a lease max of at least its range size', () => {
    const max = Number(
      render(upstream, 'service')
        .find((l) => l.startsWith('dhcp-lease-max='))
        ?.split('=')[1],
    );
    expect(max).toBeGreaterThanOrEqual(findNetwork(upstream, 'service').dhcp.size);
  });
});

describe('renderDnsmasqConfig: reservations, MTU, logging', () => {
  const site = parseSite({
    networks: {
      secure: {
        preset: 'secure',
        mtu: 9000,
        reservations: [
          { mac: '52:54:00:AA:00:01', ip: '192.168.129.10', name: 'build_box' },
          { mac: '52:54:00:aa:00:02', ip: '192.168.129.11' },
        ],
      },
    },
  });

  it('writes site reservations as static hosts and the MTU as an option', () => {
    const config = render(site, 'secure');
    expect(config).toEqual(
      expect.arrayContaining([
        'dhcp-host=52:54:00:aa:00:01,id:*,192.168.129.10,build_box',
        'dhcp-host=52:54:00:aa:00:02,id:*,192.168.129.11',
        'dhcp-option=option:mtu,9000',
      ]),
    );
  });

  it('logs where asked', () => {
    expect(render(site, 'secure', { log: 'syslog', logQueries: true, logDhcp: true })).toEqual(
      expect.arrayContaining(['log-facility=DAEMON', 'log-queries', 'log-dhcp']),
    );
    expect(render(site, 'secure', { log: { file: '/var/log/ticrypt-net/dnsmasq-secure.log' } })).toContain(
      'log-facility=/var/log/ticrypt-net/dnsmasq-secure.log',
    );
  });
});

describe('renderDnsmasqConfig refuses what does not belong in a config line', () => {
  const secure = findNetwork(upstream, 'secure');
  const bad: [string, () => unknown][] = [
    ['options.hostsDir', () => renderDnsmasqConfig(upstream, secure, { ...paths, hostsDir: 'relative/hosts' })],
    ['options.hostsDir', () => renderDnsmasqConfig(upstream, secure, { ...paths, hostsDir: '/a/../etc' })],
    ['options.leaseFile', () => renderDnsmasqConfig(upstream, secure, { ...paths, leaseFile: '/var/x\ndhcp-range=1' })],
    ['options.pidFile', () => renderDnsmasqConfig(upstream, secure, { ...paths, pidFile: '/run/a b.pid' })],
    ['options.pidFile', () => renderDnsmasqConfig(upstream, secure, { ...paths, pidFile: '/run/a,b.pid' })],
    ['options.log.file', () => renderDnsmasqConfig(upstream, secure, { ...paths, log: { file: '/var/log/#x' } })],
    ['network.gatewayInterface', () => renderNetwork({ gatewayInterface: 'eth0\nserver=1.1.1.1' })],
    ['network.gateway', () => renderNetwork({ gateway: '192.168.128.1,8.8.8.8' })],
    ['network.name', () => renderNetwork({ name: 'secure\nno-resolv' })],
    ['network.subnet', () => renderNetwork({ subnet: '192.168.128.1/17' })],
    ['network.dhcp.start', () => renderNetwork({ dhcp: { ...secure.dhcp, start: '192.168.129.1/x' } })],
    ['network.dhcp.leaseTime', () => renderNetwork({ dhcp: { ...secure.dhcp, leaseTime: '12h,set:x' } })],
    ['network.dhcp.leaseTime', () => renderNetwork({ dhcp: { ...secure.dhcp, leaseTime: '60' } })],
    [
      'network.reservations[0].mac',
      () => renderNetwork({ reservations: [{ mac: '01:00:5e:00:00:01', ip: '1.2.3.4' }] }),
    ],
    [
      'network.reservations[0].mac',
      () => renderNetwork({ reservations: [{ mac: '52:54:00:AA:00:01', ip: '1.2.3.4' }] }),
    ],
    [
      'network.reservations[0].name',
      () => renderNetwork({ reservations: [{ mac: '52:54:00:aa:00:01', ip: '192.168.129.9', name: 'a,b' }] }),
    ],
    ['network.mtu', () => renderNetwork({ mtu: 1e6 })],
    ['site.backend.upstreamDns[0]', () => renderSiteUpstream(['8.8.8.8#53'])],
    ['site.backend.upstreamDns[0]', () => renderSiteUpstream(['192.168.122.1'])],
  ];
  it.each(bad)('%s', (field, action) => {
    const error = thrown(action);
    expect(error.field).toBe(field);
  });

  function renderNetwork(change: Partial<Record<keyof Network, unknown>>): string {
    return renderDnsmasqConfig(upstream, { ...secure, ...change } as Network, paths);
  }
  function renderSiteUpstream(upstreamDns: string[]): string {
    const service = findNetwork(upstream, 'service');
    const site = { ...upstream, backend: { ...upstream.backend, upstreamDns } };
    return renderDnsmasqConfig(site, service, paths);
  }
});

describe('renderDnsmasqConfig properties', () => {
  it('every valid site: dhcp-lease-max at least the range size, one static range, router = gateway', () => {
    fc.assert(
      fc.property(arbSiteInput, (input) => {
        const site = parseSite(input);
        for (const network of site.networks) {
          const config = lines(renderDnsmasqConfig(site, network, paths));
          const max = Number(config.find((line) => line.startsWith('dhcp-lease-max='))?.split('=')[1]);
          expect(max).toBeGreaterThanOrEqual(network.dhcp.size);
          expect(config.filter((line) => line.startsWith('dhcp-range='))).toEqual([
            expect.stringMatching(new RegExp(`^dhcp-range=${network.dhcp.start.replaceAll('.', '\\.')},static,`)),
          ]);
          expect(config).toContain(`dhcp-option=option:router,${network.gateway}`);
          expect(config.includes('port=0')).toBe(network.dns === 'controlled');
        }
      }),
      { numRuns: 100 },
    );
  });
});
