import { createServer, type Server } from 'node:http';
import { chmod, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_INTERFACE_SETTINGS, interfaceKey, type GatewaySettingKey } from '../../src/backend/sysctls.js';
import { failClosedRules, ruleArgs } from '../../src/backend/guard/rules.js';
import { renderRuleset } from '../../src/backend/nft/ruleset.js';
import { parseSiteText } from '../../src/site/load.js';
import { cli } from '../support/cli.js';
import { LabResources, labSiteYaml, VIRSH, vsctl, writeLabSite, type LabNetwork } from './host-lab.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';

const lab = labAvailable('ovs-vsctl', 'virsh', 'ip', 'ethtool', 'nft');

interface Result {
  id: string;
  subject: string;
  status: string;
  fix?: string;
}

/**
 * doctor against the real OVS and libvirtd: a healthy lab host is all OK;
 * each seeded fault is reported FAIL or WARN with its fix, then repaired.
 */
describe.skipIf(!lab)('doctor on a lab host (seeded faults)', () => {
  const p = runPrefix();
  const res = new LabResources();
  const networks: LabNetwork[] = [{ name: `${p}-secure`, preset: 'secure', bridge: `${p}-sec`, mode: 'vlan' }];
  const vlanIf = `${p}u.1081`;
  let args: string[] = [];
  let hooksDir = '';
  let hook = '';
  let token = '';
  let server: Server;

  const doctor = async (...extra: string[]) => {
    const result = await cli('doctor', ...args, ...extra, '--json');
    return { code: result.code, results: (JSON.parse(result.stdout) as { results: Result[] }).results };
  };
  const notOk = (results: Result[]) => results.filter((r) => r.status !== 'ok');
  let hookYaml = '';
  // host apply with the hook configuration: it installs port security's flows too (asking the backend).
  const apply = async () => {
    const run = await cli('host', 'apply', ...args.slice(0, 8), '--config', hookYaml);
    expect(run.code, run.stderr + run.stdout).toBe(0);
  };

  beforeAll(async () => {
    const dir = await res.tempDir();
    const site = await writeLabSite(res, dir, 'site.yaml', labSiteYaml(p, 'a', `${p}u`, networks), networks);
    await res.veth(vlanIf, `${p}x1081`);
    hooksDir = join(dir, 'hooks');
    hook = join(hooksDir, 'qemu.d', 'ticrypt-net');
    await mkdir(join(hooksDir, 'qemu.d'), { recursive: true });
    await writeFile(hook, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    await utimes(hook, new Date('2000-01-01'), new Date('2000-01-01'));
    token = `kvm-a.token${p}`;
    // A backend with no VM registered: its registrations, and a network's peers (gateway MAC, groups).
    server = createServer((req, res2) => {
      const authorized = req.headers.authorization === `Bearer ${token}`;
      const peers = /^\/v1\/networks\/([^/]+)\/peers$/.exec(req.url ?? '')?.[1];
      res2.writeHead(authorized ? 200 : 401, { 'content-type': 'application/json' });
      res2.end(
        JSON.stringify(
          !authorized
            ? { error: { code: 'E_AUTH', message: 'bad token' } }
            : peers !== undefined
              ? { network: peers, gatewayMac: '52:54:00:ff:00:01', groups: [] }
              : { registrations: [] },
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await writeFile(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    hookYaml = join(dir, 'hook.yaml');
    await writeFile(
      hookYaml,
      JSON.stringify({
        hostId: 'kvm-a',
        backend: { url: `http://127.0.0.1:${port}`, tokenFile: join(dir, 'token'), insecure: true },
        networks: [{ name: `${p}-secure`, bridge: `${p}-sec` }],
      }),
    );
    args = ['--site', site, '--host', 'a', '--datapath', 'netdev', '--uplink-bridge', `${p}-upl`];
    args.push('--hooks-dir', hooksDir, '--hook-config', hookYaml);
    await apply();
  });
  afterAll(async () => {
    server?.close();
    await res.cleanup();
  });

  it('a healthy lab host reports all OK and exits 0', async () => {
    const { code, results } = await doctor();
    expect(notOk(results)).toEqual([]);
    expect(code).toBe(0);
    expect(results.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        'ovs.running',
        'bridge.present',
        'bridge.uplink',
        'vlan.vm-ports',
        'uplink.interface',
        'network.definition',
        'network.active',
        'network.autostart',
        'hook.installed',
        'hook.executable',
        'hook.interpreter',
        'hook.loaded',
        'backend.reachable',
        'routes.overlap',
        'bridge.port-security',
        'flows.programs',
      ]),
    );
  });

  const vm = `${p}vm1`;
  const faults: [string, () => Promise<unknown>, () => Promise<unknown>, string, string, string][] = [
    ['bridge deleted', () => vsctl('del-br', `${p}-sec`), apply, 'fail bridge.present', `${p}-sec`, 'host apply'],
    [
      'uplink tag removed',
      () => vsctl('remove', 'port', vlanIf, 'tag', '1081'),
      apply,
      'fail vlan.uplink',
      vlanIf,
      'tag=1081',
    ],
    [
      'uplink interface down',
      () => execa('ip', ['link', 'set', vlanIf, 'down']),
      apply,
      'fail uplink.interface',
      vlanIf,
      `ip link set dev ${vlanIf} up`,
    ],
    [
      'VM port on the wrong VLAN',
      () =>
        vsctl(
          'add-port',
          `${p}-sec`,
          vm,
          'tag=999',
          '--',
          'set',
          'interface',
          vm,
          'type=internal',
          'external_ids:iface-id=x',
        ),
      // The bridge program lists the ports that are not VMs': gone, it is stale until a sync (here: apply).
      async () => {
        await vsctl('del-port', vm);
        await apply();
      },
      'fail vlan.vm-ports',
      `${p}-sec`,
      'tag=1081',
    ],
    [
      'network undefined',
      async () => {
        await execa('virsh', [...VIRSH, 'net-destroy', `${p}-secure`]);
        await execa('virsh', [...VIRSH, 'net-undefine', `${p}-secure`]);
      },
      apply,
      'fail network.defined',
      `${p}-secure`,
      'host apply',
    ],
    [
      'network stopped',
      () => execa('virsh', [...VIRSH, 'net-destroy', `${p}-secure`]),
      apply,
      'fail network.active',
      `${p}-secure`,
      'net-start',
    ],
    [
      'autostart off',
      () => execa('virsh', [...VIRSH, 'net-autostart', '--disable', `${p}-secure`]),
      apply,
      'warn network.autostart',
      `${p}-secure`,
      'net-autostart',
    ],
    [
      'definition differs (VLAN)',
      async () => {
        const xml = (await execa('virsh', [...VIRSH, 'net-dumpxml', '--inactive', `${p}-secure`])).stdout.replace(
          "id='1081'",
          "id='1099'",
        );
        const file = join(await res.tempDir(), 'n.xml');
        await writeFile(file, xml);
        await execa('virsh', [...VIRSH, 'net-define', file]);
      },
      apply,
      'fail network.definition',
      `${p}-secure`,
      'host apply',
    ],
    [
      'hook missing',
      () => rm(hook),
      async () => {
        await writeFile(hook, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
        await utimes(hook, new Date('2000-01-01'), new Date('2000-01-01'));
      },
      'fail hook.installed',
      '',
      'hook install',
    ],
    [
      'hook not executable',
      () => chmod(hook, 0o644),
      () => chmod(hook, 0o755),
      'fail hook.executable',
      '',
      'chmod 755',
    ],
    [
      'interpreter under /usr/local',
      () => writeFile(hook, '#!/usr/local/bin/node\n'),
      async () => {
        await writeFile(hook, '#!/bin/sh\nexit 0\n');
        await utimes(hook, new Date('2000-01-01'), new Date('2000-01-01'));
      },
      'fail hook.interpreter',
      '',
      'under /usr/bin',
    ],
    [
      'hook changed after libvirtd started',
      () => utimes(hook, new Date(), new Date(Date.now() + 60_000)),
      () => utimes(hook, new Date('2000-01-01'), new Date('2000-01-01')),
      'fail hook.loaded',
      '',
      'restart libvirtd',
    ],
    [
      'token refused',
      async () => {
        token = 'another';
      },
      async () => {
        token = `kvm-a.token${p}`;
      },
      'fail backend.reachable',
      '',
      'token add',
    ],
  ];

  it.each(faults)('%s: reported with its fix, then repaired', async (_name, seed, repair, expected, subject, fix) => {
    await seed();
    const { code, results } = await doctor();
    const found = notOk(results).find(
      (r) => `${r.status} ${r.id}` === expected && (subject === '' || r.subject === subject),
    );
    expect(found, JSON.stringify(notOk(results))).toBeDefined();
    expect(found?.fix).toContain(fix);
    if (expected.startsWith('fail')) expect(code).toBe(1);
    await repair();
    expect(notOk((await doctor()).results)).toEqual([]);
  });
});

describe.skipIf(!lab)('doctor --role backend in a namespace (real nft, sysctl, routes)', () => {
  const p = runPrefix();
  const res = new LabResources();
  const ns = `${p}be`;
  const site = parseSiteText(`name: ${p}\nbackend: { trunk: ${p}t }\nnetworks:\n  secure: { preset: secure }\n`);
  let siteFile = '';
  const doctor = async () => {
    const result = await cli(
      'doctor',
      '--role',
      'backend',
      '--site',
      siteFile,
      '--netns',
      ns,
      '--state-dir',
      join(siteFile, '..', 'state'),
      '--json',
    );
    return (JSON.parse(result.stdout) as { results: Result[] }).results;
  };
  const status = (results: Result[], id: string) => results.find((r) => r.id === id)?.status;
  const inNs = (program: string, args: string[], input?: string) =>
    execa('ip', ['netns', 'exec', ns, program, ...args], input === undefined ? {} : { input });

  beforeAll(async () => {
    await res.netns(ns);
    siteFile = join(await res.tempDir(), 'site.yaml');
    await writeFile(siteFile, `name: ${p}\nbackend: { trunk: ${p}t }\nnetworks:\n  secure: { preset: secure }\n`);
  });
  afterAll(() => res.cleanup());

  it('a bare namespace: table missing, forwarding off, dnsmasq not running', async () => {
    const results = await doctor();
    expect(status(results, 'nft.table')).toBe('fail');
    expect(status(results, 'sysctl.ip-forward')).toBe('fail');
    expect(status(results, 'dnsmasq.running')).toBe('fail');
    expect(status(results, 'nft.foreign-forward')).toBe('ok');
    expect(status(results, 'guard.ip-rules')).toBe('fail');
    expect(status(results, 'gateway.interface')).toBe('fail');
  });

  it('the fail-closed rules and the gateway interface settings, once in place, pass', async () => {
    for (const rule of failClosedRules(site)) await inNs('ip', ruleArgs(rule));
    const gateway = site.networks[0]!.gatewayInterface;
    await inNs('ip', ['link', 'add', gateway, 'type', 'veth', 'peer', 'name', `${p}gx`]);
    let results = await doctor();
    expect(status(results, 'guard.ip-rules')).toBe('ok');
    expect(results.find((r) => r.id === 'sysctl.gateway')).toMatchObject({ status: 'fail', subject: gateway });
    for (const [key, value] of Object.entries(GATEWAY_INTERFACE_SETTINGS)) {
      await inNs('sysctl', ['-qw', `${interfaceKey(gateway, key as GatewaySettingKey)}=${value}`]);
    }
    results = await doctor();
    expect(status(results, 'sysctl.gateway')).toBe('ok');
  });

  it("with the project's table and forwarding on those pass; another table's drop chain and an overlapping route fail", async () => {
    await inNs('nft', ['-f', '-'], renderRuleset(site, { registrations: [], allowLists: [] }));
    await inNs('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    let results = await doctor();
    expect(status(results, 'nft.table')).toBe('ok');
    expect(status(results, 'sysctl.ip-forward')).toBe('ok');
    expect(status(results, 'routes.overlap')).toBe('ok');
    await inNs(
      'nft',
      ['-f', '-'],
      'table ip dockerish {\n chain dfwd {\n  type filter hook forward priority 0; policy drop;\n }\n}\n',
    );
    await inNs('ip', ['link', 'add', 'wg0', 'type', 'veth', 'peer', 'name', 'wg1']);
    await inNs('ip', ['link', 'set', 'wg0', 'up']);
    await inNs('ip', ['route', 'add', '192.168.200.0/24', 'dev', 'wg0']);
    results = await doctor();
    expect(results.find((r) => r.id === 'nft.foreign-forward')).toMatchObject({
      status: 'fail',
      subject: 'ip dockerish dfwd',
    });
    expect(results.find((r) => r.id === 'routes.overlap')).toMatchObject({ status: 'fail' });
  });
});
