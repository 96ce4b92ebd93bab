/**
 * Issue 13's acceptance in the lab: a bare backend namespace and a bare host
 * (test/lab/site-lab.ts: only cables and the machines' own addresses) become
 * the working architecture from the site file alone, through `backend apply`
 * and `host apply`; a second run of each changes nothing; doctor is all OK for
 * what they manage, and reports each removed piece, which apply puts back.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/backend/api/admin-client.js';
import { cli } from '../support/cli.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';
import { API_URL, SERVER, SiteLab, UPLINK_IP } from './site-lab.js';

const lab = labAvailable('ovs-vsctl', 'virsh', 'nft', 'dnsmasq', 'busybox', 'socat', 'ip', 'ethtool', 'perl', 'grep');

interface Result {
  id: string;
  subject: string;
  status: string;
  fix?: string;
}

describe.skipIf(!lab)(
  'the whole site from one file: backend apply and host apply on a bare lab (real programs)',
  () => {
    const p = runPrefix();
    let site: SiteLab;
    let backendArgs: string[] = [];
    let hostArgs: string[] = [];
    const tokens = { host: '', admin: '' };

    const doctor = async (role: 'backend' | 'host', ...extra: string[]) => {
      const args = role === 'backend' ? backendArgs : hostArgs;
      const result = await cli('doctor', '--role', role, ...args, ...extra, '--json');
      return (JSON.parse(result.stdout) as { results: Result[] }).results;
    };
    const notOk = (results: Result[]) =>
      results.filter((r) => r.status !== 'ok').map((r) => `${r.status} ${r.id} ${r.subject}`);
    /** The checks of what backend apply and host apply manage (the service's own are checked once it runs). */
    const SETUP =
      /^(gateway\.|backend\.(uplink|management)|sysctl\.|service\.|ovs\.|bridge\.|vlan\.|uplink\.|network\.)/;

    beforeAll(async () => {
      site = await SiteLab.create(p);
      // Bare: the backend's legs down, as cabled; loose reverse-path filtering on every link, as systemd's
      // sysctl defaults (50-default.conf) leave a Debian machine: with the fail-closed policy routing, it
      // drops all forwarded traffic unless backend apply makes it see the mark.
      for (const gw of ['gw-secure', 'gw-service']) await site.backend.run('ip', ['link', 'set', gw, 'down']);
      for (const link of ['gw-secure', 'gw-service', 'wan0']) {
        await site.backend.run('sysctl', ['-qw', `net.ipv4.conf.${link}.rp_filter=2`]);
      }
      backendArgs = ['--site', site.paths.site, '--netns', site.backend.name, '--root', site.paths.root];
      hostArgs = ['--site', site.paths.site, '--host', site.host.name, '--datapath', 'netdev'];
      hostArgs.push('--uplink-bridge', site.host.uplinkBridge);
    });
    afterAll(() => site?.remove());

    it('backend apply: the gateway interfaces, forwarding and sysctls from the site; a second run changes nothing', async () => {
      const before = await doctor('backend', '--state-dir', site.paths.state);
      expect(notOk(before)).toEqual(
        expect.arrayContaining([
          'fail gateway.interface gw-secure',
          'fail gateway.interface gw-service',
          'fail sysctl.ip-forward net.ipv4.ip_forward',
          'fail sysctl.gateway gw-secure',
          'warn sysctl.boot /etc/sysctl.d/60-ticrypt-net.conf',
        ]),
      );
      const plan = await cli('backend', 'plan', ...backendArgs);
      expect(plan.stdout.split('\n')).toEqual(
        expect.arrayContaining([
          'set interface gw-secure up',
          'add address 192.168.128.1/17 to gw-secure',
          'set net/ipv4/ip_forward = 1 (was 0)',
          'set net/ipv4/conf/gw-service/arp_ignore = 1 (was 0)',
        ]),
      );
      const first = await cli('backend', 'apply', ...backendArgs);
      expect(first.stderr).toBe('');
      expect(first.stdout).toContain('confirmed: nothing left to change');
      expect((await site.backend.run('ip', ['-br', 'addr', 'show', 'gw-secure'])).stdout).toMatch(
        /^gw-secure@\S+\s+UP\s+192\.168\.128\.1\/17 $/,
      );
      const sysctl = (key: string) => site.backend.run('sysctl', ['-n', key]).then((r) => r.stdout.trim());
      expect(await sysctl('net.ipv4.ip_forward')).toBe('1');
      expect(await sysctl('net.ipv4.conf.gw-service.rp_filter')).toBe('1');
      expect(await sysctl('net.ipv4.conf.gw-service.arp_announce')).toBe('2');
      expect(await readFile(join(site.paths.root, 'etc/sysctl.d/60-ticrypt-net.conf'), 'utf8')).toContain(
        'net/ipv4/conf/gw-secure/arp_ignore = 1\n',
      );
      expect(await cli('backend', 'apply', ...backendArgs)).toEqual({
        code: 0,
        stdout: 'nothing to change\n',
        stderr: '',
      });
    });

    it('host apply: bridges, uplinks and libvirt networks; a second run changes nothing', async () => {
      const first = await cli('host', 'apply', ...hostArgs);
      expect(first.stderr).toBe('');
      expect(first.stdout).toContain('confirmed: nothing left to change');
      expect(await cli('host', 'apply', ...hostArgs)).toEqual({ code: 0, stdout: 'nothing to change\n', stderr: '' });
    });

    it('is the working architecture: leases, allowed egress masqueraded, the rest dropped; open egress', async () => {
      const token = async (name: string, file: string, ...extra: string[]) => {
        const out = join(site.paths.dir, file);
        const result = await cli('backend', 'token', 'add', name, ...extra, '--store', site.paths.store, '--out', out);
        expect(result.code, result.stderr).toBe(0);
        return { out, stdout: result.stdout, token: (await readFile(out, 'utf8')).trim() };
      };
      const host = await token(site.host.name, 'host.token');
      tokens.host = host.token;
      tokens.admin = (await token('ops', 'admin.token', '--admin')).token;
      expect(host.stdout).toMatch(/^wrote /);
      // A second run keeps the token the store still accepts.
      const again = await token(site.host.name, 'host.token');
      expect(again.stdout).toMatch(/^kept /);
      expect(again.token).toBe(tokens.host);

      await site.serve();
      const secureUuid = '0b1d2c3e-0000-4000-8000-0000000000a1';
      await new AdminClient({ url: API_URL, token: tokens.admin }).setAllowList(secureUuid, [
        { address: SERVER, protocol: 'tcp', ports: 80 },
      ]);
      const secure = await site.vm(0, 'v1', '52:54:00:a1:00:01', secureUuid, tokens);
      expect(secure.lease).toBe(secure.reserved);
      expect(await secure.probe(80)).toEqual({ outcome: 'connected', firstLine: UPLINK_IP });
      expect((await secure.probe(443)).outcome).toBe('timeout');
      const service = await site.vm(1, 'v2', '52:54:00:a1:00:02', '0b1d2c3e-0000-4000-8000-0000000000a2', tokens);
      expect(service.lease).toBe(service.reserved);
      expect(await service.probe(443)).toEqual({ outcome: 'connected', firstLine: UPLINK_IP });
    });

    it('doctor: all OK for both roles; each removed piece reported; apply puts it back', async () => {
      const api = ['--state-dir', site.paths.state, '--backend-url', API_URL];
      api.push('--admin-token-file', join(site.paths.dir, 'admin.token'));
      expect(notOk(await doctor('backend', ...api))).toEqual([]);
      expect(notOk((await doctor('host')).filter((r) => SETUP.test(r.id)))).toEqual([]);

      // Remove one piece of each kind.
      await site.backend.run('ip', ['addr', 'flush', 'dev', 'gw-secure']);
      await site.backend.run('ip', ['link', 'set', 'gw-service', 'down']);
      await site.backend.run('sysctl', ['-qw', 'net.ipv4.conf.gw-service.arp_ignore=0']);
      await execa('rm', [join(site.paths.root, 'etc/sysctl.d/60-ticrypt-net.conf')]);
      await execa('ovs-vsctl', ['--timeout=10', 'del-br', site.networks[1]!.bridge]);
      await execa('virsh', ['-c', 'qemu:///system', 'net-destroy', site.networks[0]!.name]);
      await execa('ip', ['link', 'set', `${p}u.1081`, 'down']);
      expect(notOk(await doctor('backend', ...api))).toEqual(
        expect.arrayContaining([
          'fail gateway.interface gw-secure',
          'fail gateway.interface gw-service',
          'fail sysctl.gateway gw-service',
          'warn sysctl.boot /etc/sysctl.d/60-ticrypt-net.conf',
        ]),
      );
      expect(notOk((await doctor('host')).filter((r) => SETUP.test(r.id)))).toEqual(
        expect.arrayContaining([
          `fail bridge.present ${site.networks[1]!.bridge}`,
          `fail network.active ${site.networks[0]!.name}`,
          `fail uplink.interface ${p}u.1081`,
        ]),
      );

      expect((await cli('backend', 'apply', ...backendArgs)).code).toBe(0);
      expect((await cli('host', 'apply', ...hostArgs)).code).toBe(0);
      expect(notOk(await doctor('backend', ...api))).toEqual([]);
      expect(notOk((await doctor('host')).filter((r) => SETUP.test(r.id)))).toEqual([]);
    });
  },
);
