/**
 * dnsmasq's own parser (`dnsmasq --test`) is the judge of every rendered config.
 */
import fc from 'fast-check';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDnsmasqConfig } from '../../../src/backend/dnsmasq/config.js';
import { checkDnsmasqConfig } from '../../../src/backend/dnsmasq/process.js';
import { DnsmasqProcessError } from '../../../src/errors/dnsmasq-process-error.js';
import { parseSite } from '../../../src/site/parse.js';
import { labAvailable } from '../../lab/prereq.js';
import { arbSiteInput } from '../../support/arbitraries.js';

const lab = labAvailable('dnsmasq');

describe.skipIf(!lab)('dnsmasq --test accepts every rendered config', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ticrypt-dnsmasq-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function accepts(text: string, name: string): Promise<void> {
    const file = join(dir, `${name}.conf`);
    await writeFile(file, text);
    await checkDnsmasqConfig(file);
  }

  function paths(name: string) {
    return {
      hostsDir: join(dir, name, 'hosts'),
      leaseFile: join(dir, `${name}.leases`),
      pidFile: join(dir, `${name}.pid`),
    };
  }

  it('the default networks, with and without logging and reservations', async () => {
    const site = parseSite({
      backend: { upstreamDns: ['198.51.100.53', '203.0.113.53'] },
      networks: {
        secure: {
          preset: 'secure',
          mtu: 9000,
          reservations: [{ mac: '52:54:00:aa:00:01', ip: '192.168.129.10', name: 'build_box-' }],
        },
        service: { preset: 'service' },
        datain: { preset: 'datain' },
      },
    });
    for (const network of site.networks) {
      await accepts(renderDnsmasqConfig(site, network, paths(network.name)), network.name);
      await accepts(
        renderDnsmasqConfig(site, network, {
          ...paths(network.name),
          log: 'syslog',
          logQueries: true,
          logDhcp: true,
        }),
        `${network.name}-logged`,
      );
    }
    const bare = parseSite(undefined);
    for (const network of bare.networks) await accepts(renderDnsmasqConfig(bare, network, paths('bare')), 'bare');
  });

  it('random valid sites', async () => {
    await fc.assert(
      fc.asyncProperty(arbSiteInput, async (input) => {
        const site = parseSite({ ...input, backend: { upstreamDns: ['198.51.100.53'] } });
        for (const network of site.networks) {
          await accepts(renderDnsmasqConfig(site, network, paths(network.name)), 'random');
        }
      }),
      { numRuns: 8 },
    );
  });

  it('reports what dnsmasq refuses', async () => {
    const file = join(dir, 'bad.conf');
    await writeFile(file, 'dhcp-range=192.168.129.1,static,255.255.128.0,12h\nno-such-option\n');
    const error = await checkDnsmasqConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsmasqProcessError);
    expect((error as DnsmasqProcessError).code).toBe('E_DNSMASQ_PROCESS');
    expect((error as DnsmasqProcessError).exitCode).toBe(1);
    expect((error as DnsmasqProcessError).message).toMatch(
      /^dnsmasq failed \(exit 1\) checking .*bad\.conf: dnsmasq: bad option at line 2 of /,
    );
  });
});
