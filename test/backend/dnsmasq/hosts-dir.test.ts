import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostsDir } from '../../../src/backend/dnsmasq/hosts-dir.js';
import { DnsmasqInputError } from '../../../src/errors/dnsmasq-error.js';
import { findNetwork } from '../../../src/site/lookup.js';
import { defaultSite } from '../../../src/site/parse.js';

const secure = findNetwork(defaultSite(), 'secure');
const a = { mac: '52:54:00:00:00:0a', ip: '192.168.129.10' };
const b = { mac: '52:54:00:00:00:0b', ip: '192.168.129.11' };

describe('HostsDir', () => {
  let root: string;
  let reloads: number;
  let hosts: HostsDir;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ticrypt-hostsdir-'));
    reloads = 0;
    hosts = new HostsDir(join(root, 'hosts'), { network: secure, reload: () => void (reloads += 1) });
    await hosts.ensure();
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes a new entry without a reload (dnsmasq reads new files itself)', async () => {
    expect(await hosts.put(a)).toBe('created');
    expect(await readFile(join(hosts.path, '52-54-00-00-00-0a'), 'utf8')).toBe(
      '52:54:00:00:00:0a,id:*,192.168.129.10\n',
    );
    expect((await stat(join(hosts.path, '52-54-00-00-00-0a'))).mode & 0o777).toBe(0o644);
    expect(reloads).toBe(0);
    expect(await readdir(hosts.path)).toEqual(['52-54-00-00-00-0a']);
  });

  it('leaves an identical entry alone, and reloads after changing one', async () => {
    await hosts.put(a);
    expect(await hosts.put(a)).toBe('unchanged');
    expect(reloads).toBe(0);
    expect(await hosts.put({ ...a, ip: '192.168.129.99' })).toBe('replaced');
    expect(reloads).toBe(1);
    expect(await readFile(join(hosts.path, '52-54-00-00-00-0a'), 'utf8')).toBe(
      '52:54:00:00:00:0a,id:*,192.168.129.99\n',
    );
  });

  it('removes an entry and reloads; removing a missing one does nothing', async () => {
    await hosts.put(a);
    expect(await hosts.remove(a.mac)).toBe(true);
    expect(reloads).toBe(1);
    expect(await readdir(hosts.path)).toEqual([]);
    expect(await hosts.remove(a.mac)).toBe(false);
    expect(reloads).toBe(1);
  });

  it('writes nothing for a refused registration', async () => {
    await expect(hosts.put({ mac: a.mac, ip: '10.0.0.1' })).rejects.toThrow(DnsmasqInputError);
    await expect(hosts.remove('52:54:00:00:00:0A')).rejects.toThrow(DnsmasqInputError);
    expect(await readdir(hosts.path)).toEqual([]);
  });

  it('survives many concurrent writes of the same MAC with one whole entry and no temporary files', async () => {
    const ips = Array.from({ length: 20 }, (_, i) => `192.168.130.${i + 1}`);
    await Promise.all(ips.map((ip) => hosts.put({ mac: a.mac, ip })));
    const content = await readFile(join(hosts.path, '52-54-00-00-00-0a'), 'utf8');
    expect(ips.map((ip) => `${a.mac},id:*,${ip}\n`)).toContain(content);
    expect(await readdir(hosts.path)).toEqual(['52-54-00-00-00-0a']);
  });

  it('sync converges the directory with one reload at most', async () => {
    await hosts.put(a);
    await hosts.put({ mac: '52:54:00:00:00:0c', ip: '192.168.129.12' });
    await writeFile(join(hosts.path, '.52-54-00-00-00-0d.1.ab.tmp'), 'half');
    await writeFile(join(hosts.path, 'README'), 'kept: not ours');
    const outcome = await hosts.sync([{ ...a, ip: '192.168.129.20' }, b]);
    expect(outcome).toEqual({ created: 1, replaced: 1, removed: 1, unchanged: 0, reloaded: true });
    expect(reloads).toBe(1);
    expect(await hosts.macs()).toEqual([a.mac, b.mac]);
    expect((await readdir(hosts.path)).sort()).toEqual(['52-54-00-00-00-0a', '52-54-00-00-00-0b', 'README']);
    expect(await hosts.sync([{ ...a, ip: '192.168.129.20' }, b])).toEqual({
      created: 0,
      replaced: 0,
      removed: 0,
      unchanged: 2,
      reloaded: false,
    });
    expect(reloads).toBe(1);
  });
});
