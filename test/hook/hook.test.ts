import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import {
  domainXml,
  hostRig,
  type HostRig,
  placeOn,
  portHookData,
  randomMac,
  removeRig,
  runHookScript,
  sharedBackend,
  testVm,
  type TestVm,
} from './support.js';

const shared = sharedBackend();
let rig: HostRig;

beforeEach(() => {
  shared.proxy.mode = 'up';
  rig = hostRig({
    hostId: 'kvm-1',
    token: shared.server.backend.tokens.host,
    backendUrl: `http://127.0.0.1:${shared.proxy.port}`,
  });
});
afterEach(() => removeRig(rig));

/** Run the qemu hook on host `r`; a start-like op is preceded by the launcher placing the VM there. */
const qemu = async (vm: TestVm, op: string, subop: string, form: 'live' | 'configured' = 'live', r = rig) => {
  if (['start', 'started', 'reconnect', 'restore'].includes(op)) await placeOn(shared.server.backend, vm, r.hostId);
  return runHookScript(r.qemuHook, [vm.name, op, subop, '-'], domainXml(vm, form));
};
const registration = (vm: TestVm, i = 0) => {
  const nic = vm.nics[i]!;
  return shared.server.backend.store.registrations.get(nic.network ?? 'secure', nic.mac ?? '');
};
const spooled = (r = rig) => {
  try {
    return readdirSync(join(r.spoolDir, 'events')).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
};
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('qemu hook against the real API', () => {
  it('registers every managed NIC at start, idempotently at started and reconnect; ignores unmanaged ones', async () => {
    const vm: TestVm = {
      name: 'vm-start',
      uuid: crypto.randomUUID(),
      nics: [
        { network: 'secure', mac: randomMac() },
        { network: 'service', mac: randomMac() },
        { network: 'default', mac: randomMac() },
        { bridge: 'br-secure', mac: randomMac() },
        { bridge: 'virbr0', mac: randomMac() },
      ],
    };
    const start = await qemu(vm, 'start', 'begin');
    expect(start).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm, 0)).toMatchObject({ hostId: 'kvm-1', vmUuid: vm.uuid, vmName: 'vm-start' });
    expect(registration(vm, 1)).toMatchObject({ network: 'service' });
    expect(shared.server.backend.store.registrations.get('secure', vm.nics[3]!.mac!)).toMatchObject({
      vmUuid: vm.uuid,
    });
    expect(shared.server.backend.store.registrations.ofVm(vm.uuid)).toHaveLength(3);
    expect(start.stderr).toMatch(
      /qemu start: register vm=vm-start mac=\S+ network=secure generation \d+: registered ip=192\.168\./,
    );
    for (const op of ['started', 'reconnect'] as const) {
      const again = await qemu(vm, op, 'begin');
      expect(again).toMatchObject({ code: 0, stdout: '' });
      expect(again.stderr).toMatch(/: unchanged ip=/);
    }
    expect(shared.server.backend.store.registrations.ofVm(vm.uuid)).toHaveLength(3);
  });

  it('deregisters at stopped (configured form) and release is harmless', async () => {
    const vm = testVm('vm-stop');
    await qemu(vm, 'start', 'begin');
    expect(registration(vm)).toBeDefined();
    const stopped = await qemu(vm, 'stopped', 'end', 'configured');
    expect(stopped).toMatchObject({ code: 0, stdout: '' });
    expect(stopped.stderr).toMatch(/deregister vm=vm-stop .*: removed/);
    expect(registration(vm)).toBeUndefined();
    const release = await qemu(vm, 'release', 'end', 'configured');
    expect(release).toMatchObject({ code: 0, stdout: '' });
    expect(release.stderr).toMatch(/: absent/);
  });

  it('treats restore as a start', async () => {
    const vm = testVm('vm-restore');
    expect(await qemu(vm, 'restore', 'begin')).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm)).toBeDefined();
  });

  it.each(['prepare', 'attach', 'frobnicate', ''])('leaves %j alone: exit 0, no output, no Node start', async (op) => {
    const vm = testVm('vm-ignored');
    const run = await qemu(vm, op, 'begin');
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(run.ms).toBeLessThan(40); // a Node start alone takes ~60 ms here
    expect(registration(vm)).toBeUndefined();
  });

  it('maps VM names the API refuses to a valid, distinct name', async () => {
    const vm = { ...testVm('x'), name: 'research vm &amp; é/1' };
    expect(await qemu(vm, 'start', 'begin')).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm)?.vmName).toMatch(/^research_vm___+_1\+[0-9a-f]{8}$/);
  });

  it('registers concurrent starts of many VMs, each with its own generation', async () => {
    const vms = Array.from({ length: 8 }, (_, i) => testVm(`vm-par-${i}`));
    const runs = await Promise.all(vms.map((vm) => qemu(vm, 'start', 'begin')));
    for (const run of runs) expect(run).toMatchObject({ code: 0, stdout: '' });
    const generations = vms.map((vm) => registration(vm)?.generation);
    expect(new Set(generations).size, JSON.stringify(generations) + runs.map((r) => r.stderr).join('')).toBe(
      vms.length,
    );
  });
});

describe('an unavailable backend', () => {
  it('stop with the backend refusing: returns within its bound, spooled; host flush delivers it', async () => {
    const vm = testVm('vm-down');
    await qemu(vm, 'start', 'begin');
    shared.proxy.mode = 'refuse';
    const stop = await qemu(vm, 'stopped', 'end', 'configured');
    expect(stop).toMatchObject({ code: 0, stdout: '' });
    expect(stop.ms).toBeLessThan(1500);
    expect(stop.stderr).toMatch(/spooled for later delivery/);
    expect(spooled()).toHaveLength(1);
    expect(registration(vm)).toBeDefined();
    const listed = await cli('host', 'spool', '--config', rig.config);
    expect(listed.stdout).toMatch(
      new RegExp(`^\\d{16} deregister vm=vm-down mac=${vm.nics[0]!.mac} network=secure \\(qemu stopped\\)\\n$`),
    );
    const blocked = await cli('host', 'flush', '--config', rig.config, '--timeout', '1000');
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/1 event\(s\) still spooled/);
    shared.proxy.mode = 'up';
    const flush = await cli('host', 'flush', '--config', rig.config);
    expect(flush).toMatchObject({ code: 0, stdout: expect.stringMatching(/^delivered 1, set aside 0 .* remaining 0/) });
    expect(registration(vm)).toBeUndefined();
    expect(spooled()).toEqual([]);
  });

  it('a hanging backend: start and stop each end within the configured bound', async () => {
    rig.writeConfig({ timeouts: { requestMs: 600, hookMs: 1000 } });
    const vm = testVm('vm-hang');
    shared.proxy.mode = 'hang';
    for (const op of ['start', 'stopped'] as const) {
      const run = await qemu(vm, op, op === 'start' ? 'begin' : 'end');
      expect(run).toMatchObject({ code: 0, stdout: '' });
      expect(run.ms).toBeLessThan(1000 + 100); // the bound counts from Node's start; + spawn and sh
    }
    expect(spooled()).toHaveLength(2);
    shared.proxy.mode = 'up';
    // The next hook run, for another VM, delivers the spool first, in order: register, then deregister.
    const other = testVm('vm-next');
    await qemu(other, 'start', 'begin');
    expect(spooled()).toEqual([]);
    expect(registration(vm)).toBeUndefined();
    expect(registration(other)).toBeDefined();
  });

  it('a start with the backend down lets the VM start, spooled; a later stop keeps the order', async () => {
    const vm = testVm('vm-late');
    shared.proxy.mode = 'refuse';
    expect(await qemu(vm, 'start', 'begin')).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm)).toBeUndefined(); // closed until delivered
    shared.proxy.mode = 'up';
    expect(await qemu(testVm('vm-other'), 'start', 'begin')).toMatchObject({ code: 0 });
    expect(registration(vm)).toBeDefined(); // delivered by the next run
    shared.proxy.mode = 'refuse';
    await qemu(vm, 'stopped', 'end', 'configured');
    shared.proxy.mode = 'up';
    await qemu(vm, 'release', 'end', 'configured');
    expect(registration(vm)).toBeUndefined();
    expect(spooled()).toEqual([]);
  });

  it('requireRegistration: start exits non-zero with one clear line and spools nothing', async () => {
    rig.writeConfig({ networks: [{ name: 'secure', requireRegistration: true }] });
    const vm = testVm('vm-required');
    shared.proxy.mode = 'refuse';
    const start = await qemu(vm, 'start', 'begin');
    expect(start).toMatchObject({ code: 1, stdout: '' });
    expect(start.stderr).toMatch(/registration required and not done: refusing the VM/);
    expect(spooled()).toEqual([]);
    // At started and reconnect a failure never kills the VM: spooled instead.
    for (const op of ['started', 'reconnect']) {
      expect(await qemu(vm, op, 'begin')).toMatchObject({ code: 0, stdout: '' });
    }
    expect(spooled()).toHaveLength(2);
    shared.proxy.mode = 'up';
    expect(await qemu(vm, 'start', 'begin')).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm)).toBeDefined();
  });
});

describe('migration order across two hosts', () => {
  it('the source stopping after the destination started leaves the destination registration', async () => {
    const b = hostRig({
      hostId: 'kvm-2',
      token: shared.server.backend.tokens.otherHost,
      backendUrl: `http://127.0.0.1:${shared.server.port}`,
    });
    try {
      const vm = testVm('vm-migrating');
      const direct = (r: HostRig, op: string, subop: string, form: 'live' | 'configured') =>
        runHookScript(r.qemuHook, [vm.name, op, subop, '-'], domainXml(vm, form));
      await shared.server.backend.place(vm.uuid, ['kvm-1']);
      await direct(rig, 'start', 'begin', 'live');
      expect(registration(vm)?.hostId).toBe('kvm-1');
      // The launcher migrates: both hosts while the VM moves.
      await shared.server.backend.place(vm.uuid, ['kvm-1', 'kvm-2']);
      const before = registration(vm);
      // Destination: migrate (notes the VM, marked register), prepare (nothing), start, started: all before the
      // memory copy, while the guest still runs on kvm-1. kvm-1 keeps the NIC; kvm-2 is its incoming host.
      const migrate = await direct(b, 'migrate', 'begin', 'configured');
      expect(migrate).toMatchObject({ code: 0, stdout: '' });
      expect(migrate.stderr).toMatch(/qemu migrate: register .*: incoming ip=/);
      const start = await direct(b, 'start', 'begin', 'live');
      expect(start.stderr).toMatch(/qemu start: register .*: incoming ip=/);
      await direct(b, 'started', 'begin', 'live');
      expect(registration(vm)).toMatchObject({ hostId: 'kvm-1', incomingHost: 'kvm-2', nicId: before?.nicId });
      // The launcher, once the VM runs on the destination: only kvm-2. The NIC is handed over, not revoked.
      await shared.server.backend.place(vm.uuid, ['kvm-2']);
      expect(registration(vm)).toMatchObject({ hostId: 'kvm-2', nicId: before?.nicId, ip: before?.ip });
      expect(registration(vm)?.incomingHost).toBeUndefined();
      // Source: stopped, release (late): they change nothing.
      const stopped = await direct(rig, 'stopped', 'end', 'configured');
      expect(stopped.stderr).toMatch(/kept-other-host/);
      await direct(rig, 'release', 'end', 'configured');
      expect(registration(vm)).toMatchObject({ hostId: 'kvm-2', vmUuid: vm.uuid });
    } finally {
      removeRig(b);
    }
  });
});

describe('malformed input and calls', () => {
  const uuid = '0b1d2c3e-0000-4000-8000-000000000007';
  const nicNoMac = `<domain><name>m</name><uuid>${uuid}</uuid><devices><interface type='network'><source network='secure'/></interface></devices></domain>`;
  const cases: [string, string, RegExp | undefined][] = [
    [
      'truncated XML',
      `<domain><name>t</name><uuid>${uuid}</uuid><devices><interface type='network'><mac addr`,
      /Cannot parse domain XML/,
    ],
    ['not XML', 'hello, this is not XML {"a": 1}', /Cannot parse domain XML/],
    ['empty', '', /Cannot parse domain XML: expected XML, found empty input/],
    ['another root', '<network><name>secure</name></network>', /expected a <domain> root element, found <network>/],
    [
      '10 MB',
      `<domain><name>big</name><uuid>${uuid}</uuid><description>${'x'.repeat(10 * 1024 * 1024)}</description><devices/></domain>`,
      undefined,
    ],
    ['no devices', `<domain><name>nodev</name><uuid>${uuid}</uuid></domain>`, undefined],
    ['a managed NIC without MAC', nicNoMac, /interface 1 of vm=m on network=secure has no valid unicast MAC/],
    [
      'no uuid',
      `<domain><name>nouuid</name><devices><interface type='network'><mac address='52:54:00:00:00:99'/><source network='secure'/></interface></devices></domain>`,
      /has no valid <uuid>/,
    ],
  ];
  it.each(cases)('%s: exit 0, nothing registered, at most one clear stderr line', async (_name, stdin, message) => {
    const before = shared.server.backend.store.registrations.list().length;
    for (const op of ['start', 'stopped']) {
      const run = await runHookScript(rig.qemuHook, ['vm-bad', op, 'begin', '-'], stdin);
      expect(run).toMatchObject({ code: 0, stdout: '' });
      if (message) {
        expect(lines(run.stderr)).toHaveLength(1);
        expect(run.stderr).toMatch(message);
      } else expect(lines(run.stderr)).toHaveLength(0);
    }
    expect(shared.server.backend.store.registrations.list()).toHaveLength(before);
    expect(spooled()).toEqual([]);
  });

  it('a managed NIC without MAC on a network requiring registration refuses the start', async () => {
    rig.writeConfig({ networks: [{ name: 'secure', requireRegistration: true }] });
    const run = await runHookScript(rig.qemuHook, ['m', 'start', 'begin', '-'], nicNoMac);
    expect(run).toMatchObject({ code: 1, stdout: '' });
  });

  it('extra arguments: acts, with a warning; no arguments at all: exit 0', async () => {
    const vm = testVm('vm-extra');
    await placeOn(shared.server.backend, vm, 'kvm-1');
    const run = await runHookScript(rig.qemuHook, [vm.name, 'start', 'begin', '-', 'future', 'args'], domainXml(vm));
    expect(run).toMatchObject({ code: 0, stdout: '' });
    expect(run.stderr).toMatch(/ignoring 2 extra argument/);
    expect(registration(vm)).toBeDefined();
    expect(await runHookScript(rig.qemuHook, [])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('a broken config: one clear error, exit 0, and the last valid config still acts', async () => {
    const vm = testVm('vm-cfg');
    await qemu(vm, 'start', 'begin'); // caches the valid config
    writeFileSync(rig.config, 'hostId: [unclosed\n');
    const stop = await qemu(vm, 'stopped', 'end', 'configured');
    expect(stop).toMatchObject({ code: 0, stdout: '' });
    expect(stop.stderr).toMatch(
      /error: Invalid hook configuration .*hook\.yaml: \(file\): expected YAML, found a syntax error at line 2, column 1: Flow sequence in block collection must be sufficiently indented and end with a \]; acting on the last valid configuration/,
    );
    expect(registration(vm)).toBeUndefined();
  });

  it('a broken config and no valid one before: one error line, exit 0 even for required networks', async () => {
    writeFileSync(rig.config, 'hostId: kvm-1\nnetworks: []\n');
    const run = await qemu(testVm('vm-nocfg'), 'start', 'begin');
    expect(run).toMatchObject({ code: 0, stdout: '' });
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toMatch(
      /backend: expected a mapping with url, tokenFile and optionally caFile and insecure, found nothing; networks: expected at least one network.*acting on no NIC/,
    );
  });
});

describe('network hook (hot-plug)', () => {
  it('port-created registers a NIC attached to a running VM; port-deleted deregisters it', async () => {
    const vm: TestVm = {
      name: 'vm-hotplug',
      uuid: crypto.randomUUID(),
      nics: [{ network: 'secure', mac: randomMac() }],
    };
    await placeOn(shared.server.backend, vm, 'kvm-1');
    const created = await runHookScript(rig.networkHook, ['secure', 'port-created', 'begin', '-'], portHookData(vm));
    expect(created).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm)).toMatchObject({ vmUuid: vm.uuid, vmName: 'vm-hotplug' });
    const deleted = await runHookScript(rig.networkHook, ['secure', 'port-deleted', 'begin', '-'], portHookData(vm));
    expect(deleted).toMatchObject({ code: 0, stdout: '' });
    expect(registration(vm)).toBeUndefined();
  });

  it('ignores ports on unmanaged networks and other network ops', async () => {
    const vm: TestVm = {
      name: 'vm-other-net',
      uuid: crypto.randomUUID(),
      nics: [{ network: 'default', mac: randomMac() }],
    };
    expect(
      await runHookScript(rig.networkHook, ['default', 'port-created', 'begin', '-'], portHookData(vm)),
    ).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
    for (const op of ['start', 'started', 'stopped', 'updated']) {
      expect(await runHookScript(rig.networkHook, ['secure', op, 'begin', '-'], '')).toMatchObject({
        code: 0,
        stdout: '',
        stderr: '',
      });
    }
    expect(registration(vm)).toBeUndefined();
  });
});

describe('installed as qemu.d/ticrypt-net', () => {
  it('acts the same', async () => {
    const d = hostRig({
      hostId: 'kvm-1',
      token: shared.server.backend.tokens.host,
      backendUrl: `http://127.0.0.1:${shared.server.port}`,
      qemuD: true,
    });
    try {
      const vm = testVm('vm-qemu-d');
      expect(await qemu(vm, 'start', 'begin', 'live', d)).toMatchObject({ code: 0, stdout: '' });
      expect(registration(vm)).toBeDefined();
      expect(await qemu(vm, 'stopped', 'end', 'configured', d)).toMatchObject({ code: 0, stdout: '' });
      expect(registration(vm)).toBeUndefined();
    } finally {
      removeRig(d);
    }
  });
});
