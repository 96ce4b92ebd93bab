import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/hook/setup/install.js';
import { cli } from '../support/cli.js';
import { bundleHook, runHookScript } from './support.js';

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
    expect(text).toContain(`TICRYPT_NET_HOOK='${join(packageRoot(), 'dist/hook/hook.cjs')}'`);
    expect(text).toContain(`TICRYPT_NET_CONFIG='${join(root, 'etc/ticrypt-net/hook.yaml')}'`);
    expect(text).toMatch(/TICRYPT_NET_NODE='\/usr\/(local\/)?bin\/node'/);
    expect(text).not.toMatch(/@(NODE|HOOK|CONFIG|CACHE)@/);
    expect(statSync(qemu).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'etc/ticrypt-net/hook.yaml')).mode & 0o777).toBe(0o600);
    // The template is valid as it stands (its token file is what is missing).
    const check = await cli('hook', 'check', '--config', join(root, 'etc/ticrypt-net/hook.yaml'));
    expect(check.stderr).toMatch(/backend\.tokenFile: expected a readable token file, found ENOENT/);
  });

  it('again: replaces its own hooks, keeps the config', async () => {
    await cli('hook', 'install', '--root', root);
    writeFileSync(join(root, 'etc/ticrypt-net/hook.yaml'), 'hostId: mine\n');
    const again = await cli('hook', 'install', '--root', root);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`kept ${join(root, 'etc/ticrypt-net/hook.yaml')} (exists)`);
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

  it('the installed hook ignores ops without Node and never writes stdout', async () => {
    await cli('hook', 'install', '--root', root);
    for (const op of ['prepare', 'migrate', 'attach']) {
      const run = await runHookScript(join(root, 'etc/libvirt/hooks/qemu'), ['vm', op, 'begin', '-'], '<domain/>');
      expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' });
    }
  });
});
