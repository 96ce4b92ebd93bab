import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostEntries, hostEntriesPaths } from '../../../src/backend/dnsmasq/host-entries.js';
import { defaultSite } from '../../../src/site/parse.js';

const network = defaultSite().networks[0]!;
const reg = (i: number, ip = `192.168.129.${i}`) => ({ mac: `52:54:00:00:00:0${i}`, ip });

let dir: string;
let reloads: number;
let entries: HostEntries;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ticrypt-hosts-'));
  reloads = 0;
  entries = new HostEntries(hostEntriesPaths(dir), network, () => (reloads += 1));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const base = () => readFile(join(dir, 'hosts.base'), 'utf8');
const files = () => readdir(join(dir, 'hosts'));

describe('HostEntries', () => {
  it('starts with every entry in the base file and an empty directory, without a reload', async () => {
    await entries.start([reg(1), reg(2)]);
    expect(await base()).toBe('52:54:00:00:00:01,id:*,192.168.129.1\n52:54:00:00:00:02,id:*,192.168.129.2\n');
    expect(await files()).toEqual([]);
    expect(reloads).toBe(0);
  });

  it('adds as a file dnsmasq reads at once, without a reload', async () => {
    await entries.start([reg(1)]);
    await entries.put(reg(3));
    await entries.put(reg(1)); // already served: nothing to do
    expect(await files()).toEqual(['52-54-00-00-00-03']);
    expect(reloads).toBe(0);
  });

  it('removes by asking for a reload, before which compact() folds everything into the base file', async () => {
    await entries.start([reg(1), reg(2)]);
    await entries.put(reg(3));
    await entries.put(reg(4));
    await entries.remove(reg(1));
    await entries.remove(reg(4)); // only in the directory: its file goes at once
    expect(await files()).toEqual(['52-54-00-00-00-03']);
    expect(reloads).toBe(2);
    await entries.compact();
    expect(await base()).toBe('52:54:00:00:00:02,id:*,192.168.129.2\n52:54:00:00:00:03,id:*,192.168.129.3\n');
    expect(await files()).toEqual([]);
    await entries.remove(reg(9)); // not served: nothing to do
    expect(reloads).toBe(2);
  });

  it('replaces a changed address through the base file', async () => {
    await entries.start([reg(1)]);
    await entries.put(reg(1, '192.168.129.77'));
    expect(reloads).toBe(1);
    await entries.compact();
    expect(await base()).toBe('52:54:00:00:00:01,id:*,192.168.129.77\n');
    expect(entries.macs()).toEqual(['52:54:00:00:00:01']);
  });
});

describe('dhcp.bootFile', () => {
  it('becomes dhcp-boot in the network config', async () => {
    const { parseSite } = await import('../../../src/site/parse.js');
    const { renderDnsmasqConfig } = await import('../../../src/backend/dnsmasq/config.js');
    const site = parseSite({
      networks: {
        service: {
          preset: 'service',
          dhcp: { start: '192.168.122.3', end: '192.168.122.9', bootFile: 'http://198.51.100.10/boot.ipxe' },
        },
      },
    });
    const text = renderDnsmasqConfig(site, site.networks[0]!, {
      hostsDir: '/x/hosts',
      leaseFile: '/x/leases',
      pidFile: '/x/pid',
    });
    expect(text).toContain('\ndhcp-boot=http://198.51.100.10/boot.ipxe\n');
  });
});
