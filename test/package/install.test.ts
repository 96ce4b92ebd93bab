/**
 * The install layout: `npm pack`, then `npm install -g ./ticrypt-net-*.tgz`
 * into a temporary prefix with only Node, npm and the Debian packages, and the
 * installed `ticrypt-net` runs: `--version`, `hook install --root` (the hook's
 * bundle copied out of the package), `render all`, and a command that loads
 * the native SQLite addon.
 *
 * The two native addons (better-sqlite3, @unraid/libvirt) download prebuilt
 * binaries from GitHub, which this lab cannot reach, and otherwise compile
 * (about 2 minutes here). Both installers take a mirror (`npm_config_*_binary_host`),
 * as a site without GitHub access would set: this test serves, on loopback,
 * the binaries this checkout's `npm ci` compiled, so the install takes ~20 s.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { execa, execaSync } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/package-files.js';
import { programsAvailable } from '../lab/prereq.js';

const ready = programsAvailable('npm', 'tar') && registryReachable();

/** Whether `npm ping` answers; a loud skip otherwise (under CI=true, a failure). */
function registryReachable(): boolean {
  const found = execaSync('npm', ['ping', '--fetch-timeout=5000'], { reject: false }).exitCode === 0;
  if (!found) {
    const message = 'the npm registry is not reachable (npm ping failed)';
    if (process.env.CI === 'true') throw new Error(message);
    process.stderr.write(`SKIPPING tests: ${message}\n`);
  }
  return found;
}

/** A JSON file of this checkout. */
function json<T>(path: string): T {
  return JSON.parse(readFileSync(join(packageRoot(), path), 'utf8')) as T;
}

describe.skipIf(!ready)('the packed tarball installs globally and runs (npm pack, npm install -g)', () => {
  const root = packageRoot();
  const version = json<{ version: string }>('package.json').version;
  let dir = '';
  let bin = '';
  let mirror: Server | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ticrypt-pack-'));
    const packed = await execa('npm', ['pack', '--pack-destination', dir], { cwd: root });
    const tarball = join(dir, packed.stdout.trim().split('\n').at(-1) ?? '');
    mirror = await serveAddons(join(dir, 'mirror'));
    const url = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
    await execa('npm', ['install', '-g', '--prefix', join(dir, 'prefix'), '--no-audit', '--no-fund', tarball], {
      env: { npm_config_better_sqlite3_binary_host: url, npm_config_libvirt_binary_host_mirror: `${url}/` },
    });
    bin = join(dir, 'prefix/bin/ticrypt-net');
  }, 240_000);
  afterAll(async () => {
    mirror?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Serve, from `at`, the addons this checkout compiled, under the names their installers ask for. */
  async function serveAddons(at: string): Promise<Server> {
    const abi = process.versions.modules;
    const addon = async (pkg: string, name: string, from: string, entry: string) => {
      const pkgVersion = json<{ version: string }>(`node_modules/${pkg}/package.json`).version;
      const file = join(
        at,
        `v${pkgVersion}`,
        `${name}-v${pkgVersion}-node-v${abi}-${process.platform}-${process.arch}.tar.gz`,
      );
      await mkdir(join(at, `v${pkgVersion}`), { recursive: true });
      await execa('tar', ['-czf', file, '-C', join(root, 'node_modules', pkg, from), entry]);
    };
    await addon('better-sqlite3', 'better-sqlite3', '', 'build/Release/better_sqlite3.node');
    await addon('@unraid/libvirt', 'libvirt', 'build', 'Release/libvirt.node');
    const server = createServer((request, response) => {
      const path = normalize(join(at, decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)));
      if (!path.startsWith(at) || !existsSync(path)) return response.writeHead(404).end();
      createReadStream(path).pipe(response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return server;
  }

  it('ticrypt-net --version', async () => {
    expect((await execa(bin, ['--version'])).stdout).toBe(version);
  });

  it('hook install --root: the hooks name the bundle copied out of the installed package', async () => {
    const target = join(dir, 'root');
    const run = await execa(bin, ['hook', 'install', '--root', target]);
    expect(run.stdout).toContain(`wrote ${join(target, 'usr/local/lib/ticrypt-net/hook/hook.cjs')}`);
    const hook = await readFile(join(target, 'etc/libvirt/hooks/qemu'), 'utf8');
    expect(hook).toContain(`TICRYPT_NET_HOOK='${join(target, 'usr/local/lib/ticrypt-net/hook/hook.cjs')}'`);
    expect(hook).not.toContain(join(dir, 'prefix'));
    expect(await readFile(join(target, 'usr/local/lib/ticrypt-net/hook/hook.cjs'))).toEqual(
      await readFile(join(dir, 'prefix/lib/node_modules/ticrypt-net/dist/hook/hook.cjs')),
    );
  });

  it('render all writes the networks, as the checkout renders them', async () => {
    const out = join(dir, 'render');
    await execa(bin, ['render', 'all', '--out', out]);
    expect((await readdir(join(out, 'networks'))).sort()).toEqual(['datain.xml', 'secure.xml', 'service.xml']);
    expect(await readFile(join(out, 'networks/secure.xml'), 'utf8')).toBe(
      await readFile(join(root, 'xml-templates/secure.xml'), 'utf8'),
    );
  });

  it('the native addons load: a token in a new store (better-sqlite3), the libvirt binding', async () => {
    const run = await execa(bin, ['backend', 'token', 'add', 'kvm-1', '--store', join(dir, 'store.db')]);
    expect(run.stdout).toMatch(/^kvm-1\.[A-Za-z0-9_-]{43}$/);
    // The libvirt binding loads its addon when a Hypervisor is made; libvirt's in-process test driver answers.
    const script =
      "const { Hypervisor } = await import('@unraid/libvirt'); const h = new Hypervisor({ uri: 'test:///default' }); await h.connectOpen(); console.log((await h.connectListAllDomains()).length); await h.connectClose();";
    const libvirt = await execa(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(dir, 'prefix/lib/node_modules/ticrypt-net'),
    });
    expect(libvirt.stdout).toBe('1');
  });
});
