import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderDnsmasqConfig, type DnsmasqConfigOptions } from '../../../src/backend/dnsmasq/config.js';
import { isAllowedDomain } from '../../../src/site/primitives.js';
import { domainSetName } from '../../../src/backend/nft/names.js';
import { DnsmasqInputError, isDnsmasqInputError } from '../../../src/errors/dnsmasq-error.js';
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

  it('controls DNS: no resolv.conf, everything NXDOMAIN when nothing is allowed', () => {
    expect(config).toEqual(expect.arrayContaining(['no-resolv', 'address=/#/', 'domain-needed', 'bogus-priv']));
    expect(config.filter((line) => line.startsWith('server=') || line.startsWith('nftset='))).toEqual([]);
  });
});

describe('renderDnsmasqConfig: controlled DNS with allowed domains', () => {
  it('forwards each allowed domain to every upstream and feeds its nft set, sorted and deduplicated', () => {
    const config = render(upstream, 'secure', { allowedDomains: ['pypi.org', 'files.pythonhosted.org', 'pypi.org'] });
    expect(config.filter((line) => /^(server|nftset|address)=/.test(line))).toEqual([
      'address=/#/',
      'server=/files.pythonhosted.org/198.51.100.53',
      'server=/files.pythonhosted.org/203.0.113.53',
      `nftset=/files.pythonhosted.org/4#inet#ticrypt#${domainSetName('files.pythonhosted.org')}`,
      'server=/pypi.org/198.51.100.53',
      'server=/pypi.org/203.0.113.53',
      `nftset=/pypi.org/4#inet#ticrypt#${domainSetName('pypi.org')}`,
    ]);
  });

  it('caps TTLs below the nft sets timeout, since cache hits do not refill sets', () => {
    expect(render(upstream, 'secure')).toEqual(expect.arrayContaining(['max-cache-ttl=300', 'max-ttl=300']));
    expect(render(upstream, 'secure', { dnsTtlCap: 60 })).toEqual(
      expect.arrayContaining(['max-cache-ttl=60', 'max-ttl=60']),
    );
  });

  it('takes the set name from the given function', () => {
    const config = render(upstream, 'secure', { allowedDomains: ['pypi.org'], domainSetName: () => 'dns_pypi' });
    expect(config).toContain('nftset=/pypi.org/4#inet#ticrypt#dns_pypi');
  });

  it('refuses allowed domains when the site has no upstream resolver', () => {
    const error = thrown(() => render(defaultSite(), 'secure', { allowedDomains: ['pypi.org'] }));
    expect(error.field).toBe('site.backend.upstreamDns');
    expect(error.code).toBe('E_DNSMASQ_INPUT');
  });
});

describe('renderDnsmasqConfig: open DNS networks', () => {
  it.each(['service', 'datain'])('%s forwards everything to the upstream resolvers', (name) => {
    const config = render(upstream, name, { allowedDomains: ['pypi.org'] });
    expect(config).toEqual(expect.arrayContaining(['no-resolv', 'server=198.51.100.53', 'server=203.0.113.53']));
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
  it.each([
    ['Pypi.org', 'upper case'],
    ['pypi.org.', 'trailing dot'],
    ['org', 'a bare TLD'],
    ['a..org', 'an empty label'],
    ['-a.org', 'a leading hyphen'],
    ['a-.org', 'a trailing hyphen'],
    ['pypi.org/198.51.100.66', 'a slash (a second server)'],
    ['pypi.org\nserver=198.51.100.66', 'a newline (a second line)'],
    ['pypi.org,x', 'a comma'],
    ['pypi.org#x', 'a hash'],
    ['py pi.org', 'a space'],
    ['*.pypi.org', 'a wildcard'],
    ['#', 'the match-all domain'],
    ['a_b.org', 'an underscore'],
    ['203.0.113.10', 'an address'],
    ['', 'nothing'],
    [`${'a'.repeat(64)}.org`, 'a 64-character label'],
    [`${'abcdefghi.'.repeat(26)}org`, 'more than 253 characters'],
    ['bücher.de', 'non-ASCII (punycode is accepted)'],
    [42, 'a number'],
  ])('domain %j (%s)', (domain, _why) => {
    const error = thrown(() => render(upstream, 'secure', { allowedDomains: ['pypi.org', domain as string] }));
    expect(error.code).toBe('E_DNSMASQ_INPUT');
    expect(error.field).toBe('options.allowedDomains[1]');
    expect(error.found).toBe(domain);
    expect(error.message).toMatch(/^dnsmasq input options\.allowedDomains\[1\]: expected a lower-case domain name/);
  });

  it('says field, expected and found', () => {
    const error = thrown(() => render(upstream, 'secure', { allowedDomains: ['evil.org/198.51.100.66'] }));
    expect(error.message).toBe(
      'dnsmasq input options.allowedDomains[0]: expected a lower-case domain name of at least two labels such as pypi.org, found "evil.org/198.51.100.66"',
    );
    expect(isDnsmasqInputError(error)).toBe(true);
  });

  it('accepts punycode and digits in labels', () => {
    expect(render(upstream, 'secure', { allowedDomains: ['xn--bcher-kva.de', '1password.com', 'a.b-c.d9'] })).toContain(
      'server=/xn--bcher-kva.de/198.51.100.53',
    );
  });

  const secure = findNetwork(upstream, 'secure');
  const bad: [string, () => unknown][] = [
    ['options.hostsDir', () => renderDnsmasqConfig(upstream, secure, { ...paths, hostsDir: 'relative/hosts' })],
    ['options.hostsDir', () => renderDnsmasqConfig(upstream, secure, { ...paths, hostsDir: '/a/../etc' })],
    ['options.leaseFile', () => renderDnsmasqConfig(upstream, secure, { ...paths, leaseFile: '/var/x\ndhcp-range=1' })],
    ['options.pidFile', () => renderDnsmasqConfig(upstream, secure, { ...paths, pidFile: '/run/a b.pid' })],
    ['options.pidFile', () => renderDnsmasqConfig(upstream, secure, { ...paths, pidFile: '/run/a,b.pid' })],
    ['options.log.file', () => renderDnsmasqConfig(upstream, secure, { ...paths, log: { file: '/var/log/#x' } })],
    ['options.dnsTtlCap', () => renderDnsmasqConfig(upstream, secure, { ...paths, dnsTtlCap: 0 })],
    [
      'domainSetName(pypi.org)',
      () =>
        renderDnsmasqConfig(upstream, secure, {
          ...paths,
          allowedDomains: ['pypi.org'],
          domainSetName: () => 'set#other',
        }),
    ],
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
    ['site.backend.upstreamDns[0]', () => renderSiteUpstream(['192.168.128.1'])],
  ];
  it.each(bad)('%s', (field, action) => {
    const error = thrown(action);
    expect(error.field).toBe(field);
  });

  function renderNetwork(change: Partial<Record<keyof Network, unknown>>): string {
    return renderDnsmasqConfig(upstream, { ...secure, ...change } as Network, paths);
  }
  function renderSiteUpstream(upstreamDns: string[]): string {
    return renderDnsmasqConfig({ ...upstream, backend: { ...upstream.backend, upstreamDns } }, secure, paths);
  }
});

describe('renderDnsmasqConfig properties', () => {
  it('any string as a domain: rendered only when valid, else a DnsmasqInputError; never a stray line', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.domain(), fc.constantFrom('a.b', 'x.y\n', 'a.b/c')), (domain) => {
        let text: string;
        try {
          text = renderDnsmasqConfig(upstream, findNetwork(upstream, 'secure'), { ...paths, allowedDomains: [domain] });
        } catch (error) {
          expect(isDnsmasqInputError(error)).toBe(true);
          expect(isAllowedDomain(domain)).toBe(false);
          return;
        }
        expect(isAllowedDomain(domain)).toBe(true);
        const forwarded = lines(text).filter((line) => line.startsWith('server=/') || line.startsWith('nftset='));
        expect(forwarded).toHaveLength(3);
        for (const line of forwarded) expect(line.split('/')[1]).toBe(domain);
      }),
      { numRuns: 300 },
    );
  });

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
          expect(config.includes('address=/#/')).toBe(network.dns === 'controlled');
        }
      }),
      { numRuns: 100 },
    );
  });
});
