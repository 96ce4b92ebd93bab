import { spawn, execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { installHooks } from '../../src/hook/setup/install.js';
import { packageRoot } from '../../src/package-files.js';
import { backendFixture, type BackendFixture } from '../support/backend-fixture.js';
import { RecordingEnforcer } from '../support/recording-enforcer.js';
import { parseSite } from '../../src/site/parse.js';

/** Build dist/hook/hook.cjs and hook-config.cjs from the sources (what `npm run build` should do too). */
export function bundleHook(): void {
  execFileSync(process.execPath, [join(packageRoot(), 'scripts', 'bundle-hook.mjs')], { stdio: 'inherit' });
}

/**
 * A TCP proxy in front of the backend that a test can take down: `refuse`
 * resets connections at once, `hang` accepts and never answers, `up` passes
 * them through.
 */
export class SwitchableProxy {
  mode: 'up' | 'refuse' | 'hang' = 'up';
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<SwitchableProxy> {
    const holder: { proxy?: SwitchableProxy } = {};
    const server = createServer((client) => {
      const self = holder.proxy!;
      self.sockets.add(client);
      client.on('close', () => self.sockets.delete(client));
      client.on('error', () => {});
      if (self.mode === 'refuse') return client.resetAndDestroy();
      if (self.mode === 'hang') return;
      const upstream = new Socket();
      upstream.on('error', () => client.destroy());
      upstream.connect(target, '127.0.0.1', () => {
        client.pipe(upstream);
        upstream.pipe(client);
      });
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.proxy = new SwitchableProxy(server, (server.address() as AddressInfo).port);
    return holder.proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A host's hook set-up: installed hooks under a temp root, config, token and spool. */
export interface HostRig {
  readonly root: string;
  readonly hostId: string;
  readonly config: string;
  readonly spoolDir: string;
  readonly qemuHook: string;
  readonly networkHook: string;
  /** Rewrite hook.yaml with some fields changed. */
  writeConfig(patch?: Record<string, unknown>): void;
}

/** A managed-network hook config as YAML, from a plain object (JSON is YAML). */
export function configYaml(fields: Record<string, unknown>): string {
  return JSON.stringify(fields, null, 2);
}

/**
 * Install the hooks under a fresh temp root (as `ticrypt-net hook install
 * --root` does), with a config pointing at `backendUrl` and a token file.
 */
export function hostRig(options: {
  hostId: string;
  token: string;
  backendUrl: string;
  qemuD?: boolean;
  /** Install from this package directory (default: this checkout). */
  packageDir?: string;
}): HostRig {
  const root = mkdtempSync(join(tmpdir(), 'tn-hook-'));
  const report = installHooks({
    root,
    qemuD: options.qemuD === true,
    ...(options.packageDir === undefined ? {} : { packageDir: options.packageDir }),
  });
  const config = report.config;
  const spoolDir = join(root, 'var/lib/ticrypt-net/spool');
  const tokenFile = join(root, 'etc/ticrypt-net/host.token');
  writeFileSync(tokenFile, `${options.token}\n`, { mode: 0o600 });
  const base = {
    hostId: options.hostId,
    backend: { url: options.backendUrl, tokenFile, insecure: true },
    networks: [
      { name: 'secure', bridge: 'br-secure' },
      { name: 'service', bridge: 'br-service' },
    ],
    timeouts: { requestMs: 800, hookMs: 1500 },
    spoolDir,
    syslog: false,
  };
  const rig: HostRig = {
    root,
    hostId: options.hostId,
    config,
    spoolDir,
    qemuHook: options.qemuD ? join(root, 'etc/libvirt/hooks/qemu.d/ticrypt-net') : join(root, 'etc/libvirt/hooks/qemu'),
    networkHook: options.qemuD
      ? join(root, 'etc/libvirt/hooks/network.d/ticrypt-net')
      : join(root, 'etc/libvirt/hooks/network'),
    writeConfig(patch = {}) {
      mkdirSync(join(root, 'etc/ticrypt-net'), { recursive: true });
      writeFileSync(config, configYaml({ ...base, ...patch }), { mode: 0o600 });
    },
  };
  rig.writeConfig();
  return rig;
}

/** Remove a rig's temp root. */
export function removeRig(rig: HostRig): void {
  rmSync(rig.root, { recursive: true, force: true });
}

/** What one hook run did. */
export interface HookRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Run an installed hook as libvirt does: argv, stdin, and libvirt's
 * environment (LC_ALL=C, a short PATH, no HOME), plus `env` (e.g. `OVS_RUNDIR`
 * pointing OVS's tools at another instance).
 */
export function runHookScript(
  script: string,
  args: readonly string[],
  stdin = '',
  env: Record<string, string> = {},
): Promise<HookRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(script, args, { env: { LC_ALL: 'C', PATH: '/usr/bin:/bin', ...env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
    child.stdin.end(stdin);
  });
}

/** A test VM: UUID, name and NICs (network, MAC). */
export interface TestVm {
  readonly name: string;
  readonly uuid: string;
  readonly nics: readonly { network?: string; bridge?: string; mac?: string }[];
}

/** A random locally administered unicast MAC in libvirt's range. */
export function randomMac(): string {
  return `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

/** A VM with one NIC on `network`. */
export function testVm(name: string, network = 'secure'): TestVm {
  return { name, uuid: randomUUID(), nics: [{ network, mac: randomMac() }] };
}

/** The domain XML libvirt hands the qemu hook: configured form (`prepare`, `stopped`) or live form (`start`, `started`). */
export function domainXml(vm: TestVm, form: 'configured' | 'live' = 'live'): string {
  const interfaces = vm.nics.map((nic, i) => {
    const mac = nic.mac === undefined ? '' : `<mac address='${nic.mac}'/>`;
    if (nic.network === undefined) {
      return `<interface type='bridge'>${mac}<source bridge='${nic.bridge ?? 'virbr0'}'/><model type='virtio'/></interface>`;
    }
    if (form === 'configured') {
      return `<interface type='network'>${mac}<source network='${nic.network}'/><model type='virtio'/></interface>`;
    }
    return `<interface type='bridge'>${mac}<source network='${nic.network}' portid='${randomUUID()}' bridge='${nic.bridge ?? `br-${nic.network}`}'/><vlan><tag id='1081'/></vlan><virtualport type='openvswitch'><parameters interfaceid='${randomUUID()}'/></virtualport><target dev='vnet${i}'/><model type='virtio'/></interface>`;
  });
  return `<domain type='qemu' id='1'>\n  <name>${vm.name}</name>\n  <uuid>${vm.uuid}</uuid>\n  <memory unit='KiB'>65536</memory>\n  <devices>\n    ${interfaces.join('\n    ')}\n  </devices>\n</domain>\n`;
}

/** The `<hookData>` libvirt hands the network hook for one port. */
export function portHookData(vm: TestVm, nicIndex = 0): string {
  const nic = vm.nics[nicIndex]!;
  return `<hookData>
  <network><name>${nic.network}</name><uuid>${randomUUID()}</uuid><forward mode='bridge'/><bridge name='br-${nic.network}'/><virtualport type='openvswitch'/></network>
  <networkport>
    <uuid>${randomUUID()}</uuid>
    <owner><name>${vm.name}</name><uuid>${vm.uuid}</uuid></owner>
    <mac address='${nic.mac}'/>
    <virtualport type='openvswitch'><parameters interfaceid='${randomUUID()}'/></virtualport>
    <plug type='bridge' bridge='br-${nic.network}'/>
  </networkport>
</hookData>
`;
}

/**
 * The VM launcher's call before a VM starts on a host: add `hostId` to the
 * VM's placement (keeping any other host, as during a migration).
 */
export async function placeOn(backend: BackendFixture, vm: TestVm, hostId: string): Promise<void> {
  const hosts = backend.registry.placement(vm.uuid);
  if (!hosts.includes(hostId)) await backend.place(vm.uuid, [...hosts, hostId]);
}

/** A real backend API (real registry and store, recording enforcer) listening on loopback. */
export async function listeningBackend(): Promise<{ backend: BackendFixture; port: number; close(): Promise<void> }> {
  // The presets; rate limits out of the way of tests that start hundreds of hook runs a minute.
  const site = parseSite({ backend: { api: { requestsPerMinute: 1_000_000, unauthenticatedPerMinute: 1_000_000 } } });
  const backend = await backendFixture(new RecordingEnforcer(), site);
  await backend.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (backend.app.server.address() as AddressInfo).port;
  return {
    backend,
    port,
    async close() {
      await backend.app.close();
      backend.store.close();
    },
  };
}

/** What {@link sharedBackend} gives a test file: the backend and the proxy in front of it. */
export interface SharedBackend {
  readonly server: Awaited<ReturnType<typeof listeningBackend>>;
  readonly proxy: SwitchableProxy;
}

/**
 * For a test file that runs the installed hook: the hook bundled, a listening
 * backend and a {@link SwitchableProxy} to it, started before all its tests
 * and closed after them. Read its fields inside tests and hooks (set once
 * `beforeAll` ran).
 */
export function sharedBackend(): SharedBackend {
  const shared = {} as { server: SharedBackend['server']; proxy: SwitchableProxy };
  beforeAll(async () => {
    bundleHook();
    shared.server = await listeningBackend();
    shared.proxy = await SwitchableProxy.start(shared.server.port);
  });
  afterAll(async () => {
    await shared.proxy.close();
    await shared.server.close();
  });
  return shared;
}
