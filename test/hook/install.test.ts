import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hookFileFact } from '../../src/host/doctor/host-facts.js';
import { packageRoot } from '../../src/package-files.js';
import { cli } from '../support/cli.js';
import {
  bundleHook,
  domainXml,
  hostRig,
  listeningBackend,
  placeOn,
  portHookData,
  removeRig,
  runHookScript,
  testVm,
} from './support.js';

let root: string;
beforeAll(() => bundleHook());
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tn-install-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('ticrypt-net hook install', () => {
  it('installs both hooks with absolute paths, a config template, and says to restart libvirtd', async () => {
    const run = await cli('hook', 'install', '--root', root);
    expect(run.code, run.stderr).toBe(0);
    const qemu = join(root, 'etc/libvirt/hooks/qemu');
    expect(run.stdout).toContain(`wrote ${qemu}\n`);
    expect(run.stdout).toContain(`wrote ${join(root, 'etc/libvirt/hooks/network')}\n`);
    expect(run.stdout).toContain(`wrote ${join(root, 'etc/ticrypt-net/hook.yaml')}\n`);
    expect(run.stdout).toMatch(/next: restart libvirtd .* libvirt reads them only when it starts/);
    const text = readFileSync(qemu, 'utf8');
    expect(text).toMatch(/^#!\/bin\/sh\n/);
    // The bundle is copied to a stable path of its own, not used from the checkout.
    const lib = join(root, 'usr/local/lib/ticrypt-net/hook');
    expect(text).toContain(`TICRYPT_NET_HOOK='${join(lib, 'hook.cjs')}'`);
    expect(text).not.toContain(packageRoot());
    expect((await hookFileFact(qemu)).parts?.map((part) => [part.path, part.present])).toEqual([
      [expect.stringMatching(/\/node$/), true],
      [join(lib, 'hook.cjs'), true],
    ]);
    for (const file of ['hook.cjs', 'hook-config.cjs']) {
      expect(run.stdout).toContain(`wrote ${join(lib, file)}\n`);
      expect(readFileSync(join(lib, file))).toEqual(readFileSync(join(packageRoot(), 'dist/hook', file)));
    }
    expect(text).toContain(`TICRYPT_NET_CONFIG='${join(root, 'etc/ticrypt-net/hook.yaml')}'`);
    expect(text).toMatch(/TICRYPT_NET_NODE='\/usr\/(local\/)?bin\/node'/);
    expect(text).not.toMatch(/@(NODE|HOOK|CONFIG|CACHE)@/);
    expect(statSync(qemu).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'etc/ticrypt-net/hook.yaml')).mode & 0o777).toBe(0o600);
    // The template is valid as it stands (its token file is what is missing).
    const check = await cli('hook', 'check', '--config', join(root, 'etc/ticrypt-net/hook.yaml'));
    expect(check.stderr).toMatch(/backend\.tokenFile: expected a readable token file, found ENOENT/);
  });

  it('again: leaves identical files alone, keeps the config', async () => {
    await cli('hook', 'install', '--root', root);
    writeFileSync(join(root, 'etc/ticrypt-net/hook.yaml'), 'hostId: mine\n');
    const qemu = join(root, 'etc/libvirt/hooks/qemu');
    const mtime = statSync(qemu).mtimeMs;
    const again = await cli('hook', 'install', '--root', root);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`kept ${join(root, 'etc/ticrypt-net/hook.yaml')} (exists)`);
    // Nothing differs: nothing rewritten (the mtime libvirtd's restart is judged by stays), no restart asked for.
    expect(again.stdout).not.toContain('wrote ');
    expect(again.stdout).toContain(`unchanged ${qemu}\n`);
    expect(again.stdout).not.toContain('restart libvirtd');
    expect(statSync(qemu).mtimeMs).toBe(mtime);
    expect(readFileSync(join(root, 'etc/ticrypt-net/hook.yaml'), 'utf8')).toBe('hostId: mine\n');
  });

  it('refuses to overwrite a foreign qemu hook and points to --qemu-d, which installs beside it', async () => {
    mkdirSync(join(root, 'etc/libvirt/hooks'), { recursive: true });
    writeFileSync(join(root, 'etc/libvirt/hooks/qemu'), '#!/bin/sh\n# someone else\n', { mode: 0o755 });
    const refused = await cli('hook', 'install', '--root', root);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `${join(root, 'etc/libvirt/hooks/qemu')} exists and is not ticrypt-net's hook: refusing to overwrite it. Install beside it with --qemu-d (as qemu.d/ticrypt-net; libvirt >= 6.5 runs every executable there after qemu)\n`,
    );
    expect(readFileSync(join(root, 'etc/libvirt/hooks/qemu'), 'utf8')).toContain('someone else');
    const beside = await cli('hook', 'install', '--qemu-d', '--root', root);
    expect(beside.code, beside.stderr).toBe(0);
    expect(statSync(join(root, 'etc/libvirt/hooks/qemu.d/ticrypt-net')).mode & 0o111).toBeTruthy();
    expect(statSync(join(root, 'etc/libvirt/hooks/network.d/ticrypt-net')).isFile()).toBe(true);
  });

  it('warns when node is outside the directories AppArmor lets libvirtd exec from', async () => {
    const run = await cli('hook', 'install', '--root', root, '--node', '/opt/node/bin/node');
    expect(run.stdout).toMatch(
      /next: node is \/opt\/node\/bin\/node: under AppArmor, libvirtd may exec hooks' interpreters only from \/bin, \/sbin, \/usr\/bin or \/usr\/sbin/,
    );
  });

  it('VM starts do not depend on the checkout it was installed from: removed, the hook still registers', async () => {
    const pkg = mkdtempSync(join(tmpdir(), 'tn-pkg-'));
    cpSync(join(packageRoot(), 'hooks'), join(pkg, 'hooks'), { recursive: true });
    cpSync(join(packageRoot(), 'dist/hook'), join(pkg, 'dist/hook'), { recursive: true });
    const api = await listeningBackend();
    const rig = hostRig({
      hostId: 'kvm-1',
      token: api.backend.tokens.host,
      backendUrl: `http://127.0.0.1:${api.port}`,
      packageDir: pkg,
    });
    try {
      rmSync(pkg, { recursive: true, force: true });
      const vm = testVm('vm-moved');
      await placeOn(api.backend, vm, 'kvm-1');
      const run = await runHookScript(rig.qemuHook, [vm.name, 'start', 'begin', '-'], domainXml(vm));
      expect(run).toMatchObject({ code: 0, stdout: '' });
      expect(api.backend.store.registrations.list().map((r) => r.mac)).toEqual([vm.nics[0]!.mac]);
    } finally {
      removeRig(rig);
      await api.close();
    }
  });

  it('hooks/qemu copied by hand (placeholders unfilled): never blocks a VM start; without its parts one line, exit 0', async () => {
    const copy = join(root, 'qemu');
    writeFileSync(copy, readFileSync(join(packageRoot(), 'hooks/qemu')), { mode: 0o755 });
    const vm = testVm('vm-by-hand');
    const run = await runHookScript(copy, [vm.name, 'start', 'begin', '-'], domainXml(vm));
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    if (existsSync('/usr/local/lib/ticrypt-net/hook/hook.cjs')) {
      // This machine has an installed bundle: the copy found it and ran it (no config here: it acts on no NIC).
      expect(run.stderr).not.toContain('not run');
    } else {
      expect(run.stderr).toBe(
        `ticrypt-net qemu hook: vm-by-hand start: not run: node (/usr/bin/node) or the hook bundle (/usr/local/lib/ticrypt-net/hook/hook.cjs) is missing; run ticrypt-net hook install\n`,
      );
    }
    // doctor names what the copy lacks.
    expect((await hookFileFact(copy)).parts).toEqual([
      { name: 'node', path: '/usr/bin/node', present: existsSync('/usr/bin/node') },
      {
        name: 'bundle',
        path: '/usr/local/lib/ticrypt-net/hook/hook.cjs',
        present: existsSync('/usr/local/lib/ticrypt-net/hook/hook.cjs'),
      },
    ]);
    const network = join(root, 'network');
    writeFileSync(network, readFileSync(join(packageRoot(), 'hooks/network')), { mode: 0o755 });
    expect((await runHookScript(network, ['net', 'port-created', 'begin', '-'], portHookData(vm))).code).toBe(0);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'hooks/qemu copied by hand finds the bundle at its stable path (a private mount namespace stands in for an installed host)',
    async () => {
      // A stand-in bundle that says how it was called (the real one's behaviour would depend on this machine's config).
      const lib = join(root, 'lib');
      mkdirSync(join(lib, 'ticrypt-net/hook'), { recursive: true });
      writeFileSync(
        join(lib, 'ticrypt-net/hook/hook.cjs'),
        "process.stderr.write('bundle ran: ' + process.argv.slice(2).join(' ') + '\\n');\n",
      );
      const copy = join(root, 'qemu');
      writeFileSync(copy, readFileSync(join(packageRoot(), 'hooks/qemu')), { mode: 0o755 });
      // /usr/local/lib is covered by the temp dir inside this one command's mount namespace only.
      const run = spawnSync(
        'unshare',
        [
          '-m',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount --bind "$1" /usr/local/lib && exec "$2" vm-x start begin -',
          'sh',
          lib,
          copy,
        ],
        { input: '<domain/>', env: { LC_ALL: 'C', PATH: '/usr/bin:/bin' }, encoding: 'utf8' },
      );
      expect(run.status).toBe(0);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(
        'bundle ran: /etc/ticrypt-net/hook.yaml /run/ticrypt-net/hook-config.json qemu vm-x start begin -\n',
      );
    },
  );

  it('the installed hook ignores ops without Node and never writes stdout', async () => {
    await cli('hook', 'install', '--root', root);
    for (const op of ['prepare', 'attach']) {
      const run = await runHookScript(join(root, 'etc/libvirt/hooks/qemu'), ['vm', op, 'begin', '-'], '<domain/>');
      expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' });
    }
  });
});
