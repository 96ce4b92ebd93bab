/**
 * Two KVM "hosts" on this one machine, for live migration (LAB.md "Live
 * migration between two libvirtds on this one machine"): each host is a
 * libvirtd of its own, started in a private mount namespace (`unshare -m
 * --propagation private`) in which /etc/libvirt, /run/libvirt,
 * /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt are scratch
 * directories of the host (so sockets, pid files, hooks and QEMU's
 * per-domain state do not collide with the system's libvirtd or the other
 * host), /dev/kvm is covered by an empty read-only file (so the capabilities
 * probe and its validity check agree: no KVM, and `virsh create` takes 0.3 s,
 * LAB.md "Why each virsh create took about 45 s"), with its own `host_uuid`
 * (libvirt refuses to migrate to "itself"), its own migration port range,
 * `stdio_handler = "file"` (no virtlogd inside), `namespaces = [ ]` and
 * `security_driver = "none"`. Both share the system's Open vSwitch.
 *
 * Each host's VM ports sit on bridges of its own (`<p><host><segment>`); per
 * segment, the two hosts' bridges are one L2 segment per VLAN, joined either
 * to a given "switch" bridge (the backend's leg sits there) by an OVS patch
 * pair per host trunking the segment's VLANs, or straight to each other.
 *
 *     host a: libvirtd (ns a) ── <p>asec ══ patch (trunk 1081) ══╗
 *                                                                 switch (the backend's bridge)
 *     host b: libvirtd (ns b) ── <p>bsec ══ patch (trunk 1081) ══╝
 *
 * Hooks: `ticrypt-net hook install --root <host root> --qemu-d` (the built
 * CLI), so the hook reads `<host root>/etc/ticrypt-net/hook.yaml` (this
 * host's id and token) and libvirtd, which sees `<host root>/etc/libvirt` as
 * /etc/libvirt, runs `qemu.d/ticrypt-net`. Around it, two more hooks of the
 * lab (`qemu.d/0-lab-begin`, `qemu.d/zz-lab-end`) write one line each per
 * call to the host's hook log, so every call's duration is known
 * ({@link LabHost.hookCalls}).
 *
 * Everything goes in {@link TwoHosts.remove} (also after a failure): the
 * domains, each libvirtd by its pid (its mounts go with its namespace), the
 * bridges and the scratch directories.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { GuestHost } from './guest/guest.js';
import { alive, CLI, endPid } from './service.js';

/** The directories each host gets its own copy of, inside its mount namespace. */
const PRIVATE_DIRS = ['/etc/libvirt', '/run/libvirt', '/var/lib/libvirt', '/var/cache/libvirt', '/var/log/libvirt'];

/** One L2 segment spanning both hosts: a bridge per host, its VLANs, and where they meet. */
export interface Segment {
  /** Short key in the bridge names (`<p>a<key>`): keep prefix + 1 + key + 1 within 15 characters. */
  readonly key: string;
  readonly vlans: readonly number[];
  /** An existing bridge both hosts' bridges are patched to (trunks of `vlans`); absent: patched to each other. */
  readonly switch?: string;
}

/** What {@link TwoHosts.create} builds. */
export interface TwoHostsOptions {
  readonly segments: readonly Segment[];
  /**
   * Per host (`a`, `b`): install ticrypt-net's hooks with this hook.yaml
   * content and this token (written to the host's token file, 0600; the
   * config's `backend.tokenFile` and `spoolDir` are filled in).
   */
  readonly hooks?: (host: HostName) => { config: Record<string, unknown>; token: string };
}

export type HostName = 'a' | 'b';

/** One hook call seen by the lab's begin/end hooks. */
export interface HookCall {
  readonly args: string;
  /** `Date.now()` scale, ms. */
  readonly begin: number;
  readonly end: number;
  readonly ms: number;
}

/** A libvirtd of its own: one "host". */
export class LabHost implements GuestHost {
  pid: number | undefined;
  private daemon: Promise<unknown> | undefined;

  constructor(
    readonly name: HostName,
    /** Its scratch root: `<root>/etc/libvirt` is its /etc/libvirt, and so on. */
    readonly root: string,
    readonly migrationPorts: { readonly min: number; readonly max: number },
  ) {}

  /** `qemu+unix:///system?socket=...`: reachable from here and from the other host's namespace. */
  get uri(): string {
    return `qemu+unix:///system?socket=${join(this.root, 'run/libvirt/libvirt-sock')}`;
  }

  /** A path as this host's libvirtd names it, as seen from here. */
  path = (inside: string): string => {
    const dir = PRIVATE_DIRS.find((d) => inside === d || inside.startsWith(`${d}/`));
    return dir === undefined ? inside : join(this.root, inside);
  };

  /** This host's bridge of a segment. */
  bridge(p: string, segment: string): string {
    return `${p}${this.name}${segment}`;
  }

  /** The file the lab's begin/end hooks append to. */
  get hookLog(): string {
    return join(this.root, 'hook-calls.log');
  }

  /** Where the hook's config, token and spool live. */
  get hookConfig(): string {
    return join(this.root, 'etc/ticrypt-net/hook.yaml');
  }

  /** `virsh -c <this host> ...`; rejects on a non-zero exit. */
  virsh(...args: string[]) {
    return execa('virsh', ['-q', '-c', this.uri, ...args], { timeout: 120_000 });
  }

  /** The names of the running domains. */
  async domains(): Promise<string[]> {
    return (await this.virsh('list', '--name')).stdout.split('\n').filter(Boolean);
  }

  /** Every hook call so far (a begin line matched with the next end line of the same arguments). */
  async hookCalls(): Promise<HookCall[]> {
    const text = await readFile(this.hookLog, 'utf8').catch(() => '');
    const open = new Map<string, number>();
    const calls: HookCall[] = [];
    for (const line of text.split('\n')) {
      const m = /^(begin|end) (\d+) (.*)$/.exec(line);
      if (!m) continue;
      const at = Number(m[2]) / 1e6;
      if (m[1] === 'begin') open.set(m[3]!, at);
      else {
        const begin = open.get(m[3]!);
        if (begin === undefined) continue;
        open.delete(m[3]!);
        calls.push({ args: m[3]!, begin, end: at, ms: at - begin });
      }
    }
    return calls;
  }

  /** Write the scratch tree and configuration; install the hooks when given. */
  async prepare(hostUuid: string, hooks: { config: Record<string, unknown>; token: string } | undefined) {
    for (const dir of PRIVATE_DIRS) await mkdir(join(this.root, dir), { recursive: true, mode: 0o755 });
    const etc = join(this.root, 'etc/libvirt');
    await cp('/etc/libvirt', etc, { recursive: true });
    // Neither the system's hooks nor its networks: this host has its own.
    await rm(join(etc, 'hooks'), { recursive: true, force: true });
    await rm(join(etc, 'qemu/networks'), { recursive: true, force: true });
    await mkdir(join(etc, 'hooks/qemu.d'), { recursive: true });
    await mkdir(join(etc, 'qemu/networks/autostart'), { recursive: true });
    const libvirtd = await readFile('/etc/libvirt/libvirtd.conf', 'utf8');
    await writeFile(
      join(etc, 'libvirtd.conf'),
      `${libvirtd}\n# two-libvirtd lab host ${this.name}\nhost_uuid = "${hostUuid}"\n` +
        `log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n`,
    );
    const qemu = await readFile('/etc/libvirt/qemu.conf', 'utf8');
    await writeFile(
      join(etc, 'qemu.conf'),
      `${qemu}\n# two-libvirtd lab host ${this.name}\n` +
        [
          'security_driver = "none"',
          'namespaces = [ ]',
          'stdio_handler = "file"',
          `migration_port_min = ${this.migrationPorts.min}`,
          `migration_port_max = ${this.migrationPorts.max}`,
          '',
        ].join('\n'),
    );
    await writeFile(join(this.root, 'kvm-cover'), '', { mode: 0o000 });
    // The lab's timers around every other hook: one line per call, nothing on stdout (migrate's stdout is XML).
    const timer = (word: string) =>
      `#!/bin/sh\ncat >/dev/null\necho "${word} $(date +%s%N) $*" >>'${this.hookLog}'\nexit 0\n`;
    await writeFile(join(etc, 'hooks/qemu.d/0-lab-begin'), timer('begin'), { mode: 0o755 });
    await writeFile(join(etc, 'hooks/qemu.d/zz-lab-end'), timer('end'), { mode: 0o755 });
    if (hooks !== undefined) await this.installHooks(hooks);
  }

  private async installHooks(hooks: { config: Record<string, unknown>; token: string }) {
    await execa(process.execPath, [CLI, 'hook', 'install', '--root', this.root, '--qemu-d']);
    const dir = join(this.root, 'etc/ticrypt-net');
    const tokenFile = join(dir, 'host.token');
    await writeFile(tokenFile, `${hooks.token}\n`, { mode: 0o600 });
    const backend = { ...(hooks.config.backend as Record<string, unknown>), tokenFile };
    const config = { ...hooks.config, backend, spoolDir: join(this.root, 'var/lib/ticrypt-net') };
    await writeFile(this.hookConfig, JSON.stringify(config), { mode: 0o600 });
    // The hook's log lines (its stderr, which libvirtd drops when it exits 0) kept per host: the hook
    // installed is run from beside the hook directory by a wrapper that appends its stderr to {@link hookStderr}.
    for (const kind of ['qemu', 'network']) {
      const installed = join(this.root, `etc/libvirt/hooks/${kind}.d/ticrypt-net`);
      const real = join(this.root, `ticrypt-net-${kind}`);
      await rename(installed, real);
      const wrapper = `#!/bin/sh\necho "${kind} $*" >&2\nexec '${real}' "$@" 2>>'${this.hookStderr}'\n`;
      await writeFile(installed, wrapper.replace('>&2', `>>'${this.hookStderr}'`), { mode: 0o755 });
    }
  }

  /** What the ticrypt-net hooks (qemu and network) wrote on stderr, each call after a line naming it. */
  get hookStderr(): string {
    return join(this.root, 'hook-stderr.log');
  }

  /** Start this host's libvirtd in its own mount namespace, and wait until it answers. */
  async start(): Promise<void> {
    const binds = PRIVATE_DIRS.map((d) => `mount --bind '${join(this.root, d)}' '${d}'`);
    const script = [
      'set -e',
      ...binds,
      ...(existsSync('/dev/kvm')
        ? [`mount --bind '${join(this.root, 'kvm-cover')}' /dev/kvm`, 'mount -o remount,bind,ro /dev/kvm']
        : []),
      `exec libvirtd -f /etc/libvirt/libvirtd.conf -p '${join(this.root, 'libvirtd.pid')}'`,
    ].join('\n');
    // unshare and sh exec in place: the child's pid is libvirtd's.
    const log = { file: join(this.root, 'libvirtd.out'), append: true };
    const daemon = execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
      reject: false,
      stdin: 'ignore',
      stdout: log,
      stderr: log,
    });
    this.daemon = daemon;
    this.pid = daemon.pid;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await execa('virsh', ['-q', '-c', this.uri, 'version'], { reject: false, timeout: 10_000 });
      if (up.exitCode === 0) return;
      if (this.pid === undefined || !(await alive(this.pid)) || Date.now() > deadline) {
        const out = await readFile(join(this.root, 'libvirtd.out'), 'utf8').catch(() => '');
        throw new Error(`lab host ${this.name}: libvirtd did not come up: ${up.stderr}\n${out.slice(-2000)}`);
      }
      await sleep(100);
    }
  }

  /** Destroy its domains, end its libvirtd by pid and any QEMU it left (by the pid files it wrote). Never throws. */
  async stop(): Promise<void> {
    if (this.pid !== undefined && (await alive(this.pid))) {
      for (const name of await this.domains().catch(() => [])) {
        await execa('virsh', ['-q', '-c', this.uri, 'destroy', name], { reject: false, timeout: 30_000 });
      }
      await endPid(this.pid, 10_000);
    }
    await this.daemon?.catch(() => undefined);
    // A QEMU outliving its libvirtd (a crash): its pid file is in this host's /run/libvirt/qemu.
    const qemuRun = join(this.root, 'run/libvirt/qemu');
    for (const file of (await readdir(qemuRun).catch(() => [])).filter((f) => f.endsWith('.pid'))) {
      const pid = Number((await readFile(join(qemuRun, file), 'utf8').catch(() => '')).trim());
      if (pid > 0 && (await alive(pid))) await endPid(pid, 5000);
    }
  }
}

/** The two hosts, their bridges, and how to migrate between them. */
export class TwoHosts {
  readonly bridges: string[] = [];
  private constructor(
    readonly p: string,
    readonly dir: string,
    readonly a: LabHost,
    readonly b: LabHost,
  ) {}

  /** Build both hosts (hooks installed when asked) and their bridges; on a failure, remove what was built. */
  static async create(p: string, options: TwoHostsOptions): Promise<TwoHosts> {
    const dir = await mkdtemp(join(tmpdir(), `ticrypt-${p}-hosts-`));
    await chmod(dir, 0o755);
    // Port ranges apart from the system libvirtd's default 49152-49215.
    const a = new LabHost('a', join(dir, 'a'), { min: 49_400, max: 49_419 });
    const b = new LabHost('b', join(dir, 'b'), { min: 49_420, max: 49_439 });
    const hosts = new TwoHosts(p, dir, a, b);
    try {
      for (const segment of options.segments) await hosts.buildSegment(segment);
      for (const host of [a, b]) await host.prepare(randomUUID(), options.hooks?.(host.name));
      await Promise.all([a.start(), b.start()]);
    } catch (error) {
      await hosts.remove();
      throw error;
    }
    return hosts;
  }

  private async buildSegment(segment: Segment): Promise<void> {
    const vsctl = (...args: string[]) => execa('ovs-vsctl', ['--timeout=10', ...args]);
    const trunks = `trunks=${segment.vlans.join(',')}`;
    const patch = async (bridge: string, port: string, peer: string) => {
      await vsctl(
        'add-port',
        bridge,
        port,
        trunks,
        '--',
        'set',
        'interface',
        port,
        'type=patch',
        `options:peer=${peer}`,
      );
    };
    for (const host of [this.a, this.b]) {
      const bridge = host.bridge(this.p, segment.key);
      this.bridges.push(bridge);
      await vsctl('add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=netdev');
      if (segment.switch !== undefined) {
        await patch(bridge, `${bridge}u`, `${bridge}s`);
        await patch(segment.switch, `${bridge}s`, `${bridge}u`);
      }
    }
    if (segment.switch === undefined) {
      const [ba, bb] = [this.a.bridge(this.p, segment.key), this.b.bridge(this.p, segment.key)];
      await patch(ba, `${ba}u`, `${bb}u`);
      await patch(bb, `${bb}u`, `${ba}u`);
    }
  }

  /** The host other than `host`. */
  other(host: LabHost): LabHost {
    return host === this.a ? this.b : this.a;
  }

  /**
   * The domain XML for `to`: the source's migratable XML with each NIC's
   * bridge and tap name changed to `to`'s (names must differ per host: with
   * colliding names the destination's cleanup deletes the source's port, LAB.md).
   */
  async destinationXml(name: string, from: LabHost, to: LabHost): Promise<string> {
    const xml = (await from.virsh('dumpxml', '--migratable', name)).stdout;
    const [fromTag, toTag] = [`${this.p}${from.name}`, `${this.p}${to.name}`];
    return xml
      .replace(new RegExp(`bridge='${fromTag}`, 'g'), `bridge='${toTag}`)
      .replace(new RegExp(`dev='${fromTag}`, 'g'), `dev='${toTag}`);
  }

  /**
   * `virsh migrate --live` of `name` from `from` to the other host, with the
   * destination XML of {@link destinationXml}; resolves when the job ended
   * (rejects when it failed). `extra`: more `virsh migrate` flags.
   */
  async migrate(name: string, from: LabHost, extra: readonly string[] = []): Promise<{ ms: number }> {
    const started = Date.now();
    const child = this.startMigration(name, from, extra);
    const result = await child;
    if (result.exitCode !== 0) {
      throw new Error(`virsh migrate ${name} ${from.name}->${this.other(from).name}: ${result.stderr}`);
    }
    return { ms: Date.now() - started };
  }

  /** Start a migration and return the running `virsh migrate` (never rejects; see its exit code). */
  startMigration(name: string, from: LabHost, extra: readonly string[] = []) {
    const to = this.other(from);
    return (async () => {
      const file = join(this.dir, `${name}-to-${to.name}.xml`);
      await writeFile(file, await this.destinationXml(name, from, to));
      return execa('virsh', ['-q', '-c', from.uri, 'migrate', '--live', '--xml', file, ...extra, name, to.uri], {
        reject: false,
        timeout: 300_000,
      });
    })();
  }

  /** Remove everything: both hosts (domains, libvirtd, leftover QEMU), the bridges, the scratch tree. Never throws. */
  async remove(): Promise<void> {
    await Promise.all([this.a.stop(), this.b.stop()]);
    for (const bridge of this.bridges) {
      // The patch ports on a switch bridge that is not ours.
      for (const port of [`${bridge}s`]) await execa('ovs-vsctl', ['--if-exists', 'del-port', port], { reject: false });
      await execa('ovs-vsctl', ['--if-exists', 'del-br', bridge], { reject: false });
    }
    if (process.env.KEEP_LAB_LOG === undefined) await rm(this.dir, { recursive: true, force: true });
    else console.log(`two-libvirtd lab files kept in ${this.dir}`);
  }
}
