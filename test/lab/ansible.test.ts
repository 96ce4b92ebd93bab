/**
 * The Ansible roles (ansible/roles/ticrypt_net_backend, ticrypt_net_host) with
 * Debian's ansible, against this machine (connection local): the sample
 * playbook, driven by one site file, on the bare lab site of
 * test/lab/site-lab.ts (the backend in its namespace, the host's bridges and
 * networks prefixed, every file under a temporary root). Check mode shows the
 * plans and changes nothing; a run builds the architecture; a second run
 * reports changed=0; the result works and doctor is all OK.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';
import { CLI } from './service.js';
import { API_URL, SiteLab, UPLINK_IP } from './site-lab.js';

const lab = labAvailable('ansible-playbook', 'ovs-vsctl', 'virsh', 'nft', 'dnsmasq', 'busybox', 'socat', 'perl');
const PLAYBOOK = new URL('../../ansible/site.yml', import.meta.url).pathname;
const PACKAGE = new URL('../..', import.meta.url).pathname;

interface Result {
  id: string;
  subject: string;
  status: string;
}

describe.skipIf(!lab)('the Ansible roles on a bare lab site (ansible-playbook, connection local)', () => {
  const p = runPrefix();
  let site: SiteLab;
  let inventory = '';
  const roots = { backend: '', host: '' };

  /** ansible-playbook on the sample playbook; the PLAY RECAP counts per host. */
  async function playbook(...extra: string[]) {
    const run = await execa('ansible-playbook', ['-i', inventory, PLAYBOOK, ...extra], {
      reject: false,
      env: { ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_LOCALHOST_WARNING: 'false' },
      timeout: 180_000,
    });
    const recap = Object.fromEntries(
      [...run.stdout.matchAll(/^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)].map((m) => [
        m[1],
        { ok: Number(m[2]), changed: Number(m[3]), failed: Number(m[5]) + Number(m[4]) },
      ]),
    );
    return { ...run, recap };
  }

  beforeAll(async () => {
    site = await SiteLab.create(p);
    for (const gw of ['gw-secure', 'gw-service']) await site.backend.run('ip', ['link', 'set', gw, 'down']);
    roots.backend = join(site.paths.dir, 'backend-root');
    roots.host = join(site.paths.dir, 'host-root');
    inventory = join(site.paths.dir, 'inventory.json');
    await writeFile(
      inventory,
      JSON.stringify({
        all: {
          vars: {
            ansible_connection: 'local',
            ansible_python_interpreter: '/usr/bin/python3',
            ansible_become: false,
            ticrypt_net_site_file: site.paths.site,
            ticrypt_net_cli: [process.execPath, CLI],
          },
          children: {
            ticrypt_net_backend: {
              hosts: {
                backend: {
                  ticrypt_net_root: roots.backend,
                  ticrypt_net_netns: site.backend.name,
                  ticrypt_net_service: false,
                  ticrypt_net_admins: ['ops'],
                },
              },
            },
            ticrypt_net_hosts: {
              hosts: {
                [site.host.name]: {
                  ticrypt_net_root: roots.host,
                  ticrypt_net_datapath: 'netdev',
                  ticrypt_net_uplink_bridge: site.host.uplinkBridge,
                  ticrypt_net_backend_url: API_URL,
                  ticrypt_net_backend_insecure: true,
                  ticrypt_net_package_dir: PACKAGE,
                  ticrypt_net_systemd: false,
                },
              },
            },
          },
        },
      }),
    );
  });
  afterAll(() => site?.remove());

  it('check mode shows the plans and changes nothing', async () => {
    const run = await playbook('--check');
    expect(run.recap.backend?.failed, run.stdout).toBe(0);
    expect(run.recap[site.host.name]?.failed, run.stdout).toBe(0);
    expect(run.stdout).toContain('add address 192.168.128.1/17 to gw-secure');
    expect(run.stdout).toContain(
      `create bridge ${site.networks[0]!.bridge} (datapath_type=netdev, fail_mode=secure, port security peers=gateway ipv6=off)`,
    );
    expect((await site.backend.run('ip', ['-br', 'addr', 'show', 'gw-secure'])).stdout).not.toContain('192.168');
    const bridges = (await execa('ovs-vsctl', ['list-br'])).stdout.split('\n');
    expect(bridges).not.toContain(site.networks[0]!.bridge);
  });

  it('a run builds the site; a second run reports changed=0', async () => {
    const first = await playbook();
    expect(first.recap.backend, first.stdout).toMatchObject({ failed: 0 });
    expect(first.recap[site.host.name], first.stdout).toMatchObject({ failed: 0 });
    expect(first.recap.backend!.changed).toBeGreaterThan(0);
    const second = await playbook();
    expect(second.recap.backend, second.stdout).toMatchObject({ changed: 0, failed: 0 });
    expect(second.recap[site.host.name], second.stdout).toMatchObject({ changed: 0, failed: 0 });
  });

  it('works, and doctor is all OK for both roles (the service started as its unit would)', async () => {
    // The roles left the service to systemd, which this lab lacks: start it with the store and site they made.
    await site.serve(join(roots.backend, 'var/lib/ticrypt-net/backend.db'));
    const token = (name: string) => execa('cat', [join(roots.backend, 'etc/ticrypt-net/tokens', name)]);
    const tokens = {
      host: (await token(`${site.host.name}.token`)).stdout.trim(),
      admin: (await token('admin-ops.token')).stdout.trim(),
    };
    // And the flow sync its units would run once the backend answers (ticrypt-net-host-flows.service, the
    // minute's timer): host apply ran while the backend was down, without the gateway's MAC for the bridges.
    const sync = await cli('host', 'flows', '--config', join(roots.host, 'etc/ticrypt-net/hook.yaml'));
    expect(sync.code, sync.stderr + sync.stdout).toBe(0);
    const vm = await site.vm(1, 'v2', '52:54:00:a2:00:02', '0b1d2c3e-0000-4000-8000-0000000000b2', tokens);
    expect(vm.lease).toBe(vm.reserved);
    expect(await vm.probe(443)).toEqual({ outcome: 'connected', firstLine: UPLINK_IP });

    let said = '';
    const doctor = async (...args: string[]) => {
      const result = await cli('doctor', '--site', site.paths.site, ...args, '--json');
      said = result.stdout;
      return (JSON.parse(result.stdout) as { results: Result[] }).results
        .filter((r) => r.status !== 'ok')
        .map((r) => `${r.status} ${r.id} ${r.subject}`);
    };
    expect(
      await doctor(
        ...['--role', 'backend', '--netns', site.backend.name, '--root', roots.backend],
        ...['--state-dir', site.paths.state, '--backend-url', API_URL],
        ...['--admin-token-file', join(roots.backend, 'etc/ticrypt-net/tokens/admin-ops.token')],
      ),
    ).toEqual([]);
    const host = await doctor(
      ...[
        '--role',
        'host',
        '--host',
        site.host.name,
        '--datapath',
        'netdev',
        '--uplink-bridge',
        site.host.uplinkBridge,
      ],
      ...[
        '--hooks-dir',
        join(roots.host, 'etc/libvirt/hooks'),
        '--hook-config',
        join(roots.host, 'etc/ticrypt-net/hook.yaml'),
      ],
    );
    // libvirtd reads hooks only at its start, and this one started before the role installed them.
    expect(host, said).toEqual([`fail hook.loaded ${join(roots.host, 'etc/libvirt/hooks/qemu.d/ticrypt-net')}`]);
  });
});
