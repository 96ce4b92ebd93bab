import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { LabResources, labSiteYaml, VIRSH, vsctl, writeLabSite, type LabNetwork } from './host-lab.js';
import { runPrefix } from './names.js';
import { labAvailable } from './prereq.js';

const lab = labAvailable('ovs-vsctl', 'virsh', 'ip', 'ethtool');

describe.skipIf(!lab)('host apply on a bare lab host (real OVS and libvirtd)', () => {
  const p = runPrefix();
  const res = new LabResources();
  const networks: LabNetwork[] = [
    { name: `${p}-secure`, preset: 'secure', bridge: `${p}-sec`, mode: 'vlan' },
    { name: `${p}-service`, preset: 'service', bridge: `${p}-svc`, mode: 'trunk' },
  ];
  const uplink = `${p}u`;
  const uplinkBridge = `${p}-upl`;
  let args: string[] = [];
  const plan = () => cli('host', 'plan', ...args);
  const apply = () => cli('host', 'apply', ...args);

  beforeAll(async () => {
    const dir = await res.tempDir();
    const site = await writeLabSite(res, dir, 'site.yaml', labSiteYaml(p, 'a', uplink, networks), networks, [
      uplinkBridge,
    ]);
    args = ['--site', site, '--host', 'a', '--datapath', 'netdev', '--uplink-bridge', uplinkBridge];
    // Stand-ins: a veth named like the VLAN sub-interface (no 8021q here) and one playing the bond.
    await res.veth(`${uplink}.1081`, `${p}x1081`);
    await res.veth(uplink, `${p}xu`);
  });
  afterAll(() => res.cleanup());

  it('creates everything, then a second run changes nothing and says so', async () => {
    const first = await apply();
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(
      `create bridge ${p}-sec (datapath_type=netdev, fail_mode=secure, port security peers=gateway ipv6=off)`,
    );
    expect(await vsctl('get', 'bridge', `${p}-sec`, 'fail_mode')).toBe('secure');
    expect(await vsctl('get', 'bridge', `${p}-sec`, 'external_ids:ticrypt-net-uplink')).toBe(`${uplink}.1081`);
    expect(first.stdout).toContain('confirmed: nothing left to change');
    expect(await vsctl('get', 'port', `${uplink}.1081`, 'tag')).toBe('1081');
    expect(await vsctl('get', 'port', uplink, 'trunks')).toBe('[1082]');
    expect(await vsctl('get', 'interface', `${p}-svc-up`, 'options:peer')).toBe(`${p}-svc-dn`);
    expect(await vsctl('get', 'port', `${uplink}.1081`, 'external_ids:ticrypt-net')).toBe('managed');
    const info = await execa('virsh', [...VIRSH, 'net-info', `${p}-secure`]);
    expect(info.stdout).toMatch(/Active:\s+yes/);
    expect(info.stdout).toMatch(/Autostart:\s+yes/);

    const second = await apply();
    expect(second).toEqual({ code: 0, stdout: 'nothing to change\n', stderr: '' });
    expect((await plan()).stdout).toBe('nothing to change\n');
  });

  it('shows exactly the drift after manual changes, and repairs it', async () => {
    await vsctl('remove', 'port', `${uplink}.1081`, 'tag', '1081');
    await execa('virsh', [...VIRSH, 'net-destroy', `${p}-service`]);
    await execa('virsh', [...VIRSH, 'net-undefine', `${p}-service`]);
    await vsctl('del-br', `${p}-svc`);
    // A foreign port on a managed bridge stays untouched.
    await vsctl('add-port', `${p}-sec`, `${p}-foreign`, '--', 'set', 'interface', `${p}-foreign`, 'type=internal');

    const drift = await plan();
    expect(drift.stdout.split('\n').filter(Boolean)).toEqual([
      `create bridge ${p}-svc (datapath_type=netdev, fail_mode=secure, port security peers=all ipv6=off)`,
      `set port ${uplink}.1081 tag=1081 (was untagged)`,
      `add port ${p}-svc-up to bridge ${p}-svc trunks=1082 (patch, peer ${p}-svc-dn)`,
      `define network ${p}-service`,
      `start network ${p}-service`,
      `autostart network ${p}-service`,
    ]);
    const repaired = await apply();
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain('applied 6 change(s); confirmed: nothing left to change');
    expect((await plan()).stdout).toBe('nothing to change\n');
    expect(await vsctl('port-to-br', `${p}-foreign`)).toBe(`${p}-sec`);
  });

  it('redefines a network whose definition differs (here: its UUID)', async () => {
    const name = `${p}-secure`;
    const dumped = (await execa('virsh', [...VIRSH, 'net-dumpxml', '--inactive', name])).stdout;
    await execa('virsh', [...VIRSH, 'net-destroy', name]);
    await execa('virsh', [...VIRSH, 'net-undefine', name]);
    const other = dumped.replace(/<uuid>[^<]+<\/uuid>/, '<uuid>11111111-2222-4333-8444-555555555555</uuid>');
    const file = `${await res.tempDir()}/other.xml`;
    await writeFile(file, other);
    await execa('virsh', [...VIRSH, 'net-define', file]);
    await execa('virsh', [...VIRSH, 'net-start', name]);
    const drift = await plan();
    expect(drift.stdout).toContain(`redefine network ${name} (stopped, undefined, defined again): uuid: expected `);
    expect(drift.stdout).toContain('found 11111111-2222-4333-8444-555555555555');
    expect((await apply()).code).toBe(0);
    expect((await plan()).stdout).toBe('nothing to change\n');
  });

  it('writes NetworkManager keyfiles for the VLAN interfaces', async () => {
    const out = await res.tempDir();
    const result = await cli('host', 'plan', ...args, '--format', 'nmconnection', '--out', out);
    expect(result.stdout).toBe(`wrote ${out}/ticrypt-net-${uplink}.1081.nmconnection\n`);
  });
});
