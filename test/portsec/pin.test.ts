/**
 * The pin procedure's decisions (what the hook does inside libvirt's call),
 * against a fake OVS that answers like ovs-vsctl and ovs-ofctl do. The real
 * programs are in the lab tests (test/lab/portsec.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { ProgramResult, ProgramRunner } from '../../src/exec/run.js';
import { observeForPin, pinNics, unpinNics, type PinNic } from '../../src/portsec/pin.js';
import { policyExternalIds } from '../../src/portsec/policy.js';
import { cookieOf } from '../../src/portsec/cookie.js';

const MAC = '52:54:00:00:00:0a';
const VM = '0b1d2c3e-0000-4000-8000-00000000000a';
const policy = { network: 'secure', peers: 'gateway', ipv6: 'off', gateway: '192.168.128.1', uplink: 'up0' } as const;

/** A fake OVS: one bridge with an uplink and VM ports, and the stamps its bundles leave. */
function fakeOvs(options: { policy?: boolean; ports?: [string, number, string, string][]; down?: boolean } = {}) {
  const vms = options.ports ?? [['vnet0', 2, MAC, VM]];
  const stamps = new Map<string, string>(); // cookie hex -> "priority,fields"
  const bundles: string[] = [];
  const table = (headings: string[], data: unknown[][]) => JSON.stringify({ headings, data });
  const map = (o: Record<string, string>) => ['map', Object.entries(o)];
  const lookup = [
    table(
      ['_uuid', 'name', 'ports', 'datapath_type', 'external_ids', 'fail_mode'],
      [
        [
          ['uuid', 'b'],
          'br0',
          ['set', [['uuid', 'p-up'], ...vms.map(([n]) => ['uuid', `p-${n}`])]],
          'netdev',
          map(options.policy === false ? {} : policyExternalIds(policy)),
          'secure',
        ],
      ],
    ),
    table(
      ['_uuid', 'name', 'tag', 'trunks', 'vlan_mode', 'external_ids', 'interfaces'],
      [
        [['uuid', 'p-up'], 'up0', 1081, ['set', []], ['set', []], map({}), ['uuid', 'i-up']],
        ...vms.map(([n]) => [['uuid', `p-${n}`], n, 1081, ['set', []], ['set', []], map({}), ['uuid', `i-${n}`]]),
      ],
    ),
    table(
      ['_uuid', 'name', 'type', 'options', 'external_ids', 'ofport'],
      [
        [['uuid', 'i-up'], 'up0', '', map({}), map({}), 1],
        ...vms.map(([n, ofport, mac, vm]) => [
          ['uuid', `i-${n}`],
          n,
          '',
          map({}),
          map({ 'attached-mac': mac, 'vm-id': vm, 'iface-id': 'x' }),
          ofport,
        ]),
      ],
    ),
  ].join('\n');
  const ok = (command: string[], stdout = ''): ProgramResult => ({
    command,
    exitCode: 0,
    signal: undefined,
    stdout,
    stderr: '',
  });
  const run: ProgramRunner = async (program, args, opts = {}) => {
    const command = [program, ...args];
    if (options.down === true) {
      return {
        command,
        exitCode: 1,
        signal: undefined,
        stdout: '',
        stderr: 'database connection failed (No such file)',
      };
    }
    if (program === 'ovs-vsctl') return ok(command, lookup);
    if (args.includes('dump-flows')) {
      const lines = [...stamps].map(
        ([cookie, rest]) => ` cookie=${cookie}, duration=1s, table=99, n_packets=0, n_bytes=0, ${rest} actions=drop`,
      );
      return ok(command, ['OFPST_FLOW reply (OF1.4) (xid=0x2):', ...lines].join('\n'));
    }
    bundles.push(opts.input ?? '');
    for (const line of (opts.input ?? '').split('\n')) {
      const del = /^delete cookie=(0x[0-9a-f]+)\/-1$/.exec(line);
      if (del) for (const key of [...stamps.keys()]) if (key.startsWith(del[1]!)) stamps.delete(key);
      const add = /^add cookie=(0x[0-9a-f]+),table=99,priority=(\d+)(,.*)?,actions=drop$/.exec(line);
      if (add) stamps.set(`${add[1]}#${add[2]}${add[3] ?? ''}`, `priority=${add[2]}${add[3] ?? ''}`);
    }
    return ok(command);
  };
  // Stamp keys carry a suffix so the canary and the bridge stamp (one cookie) both fit; the dump strips it.
  const realRun: ProgramRunner = async (program, args, opts) => {
    const result = await run(program, args, opts);
    return { ...result, stdout: result.stdout.replace(/cookie=(0x[0-9a-f]+)#[^,]*,/g, 'cookie=$1,') };
  };
  return { run: realRun, bundles, stamps };
}

const nic: PinNic = { mac: MAC, vmUuid: VM, ip: '192.168.129.10', gatewayMac: '52:54:00:ff:00:01' };

async function pin(ovs: ReturnType<typeof fakeOvs>, nics: PinNic[]) {
  const context = { run: ovs.run, timeoutMs: () => 1000 };
  return pinNics(context, await observeForPin(context, nics), nics);
}

describe('pinning at start, started, reconnect', () => {
  it("start: the new port's program, and the bridge's while its canary is missing, in one bundle", async () => {
    const ovs = fakeOvs();
    const result = await pin(ovs, [nic]);
    expect(result.outcomes.map((o) => `${o.result}: ${o.detail}`)).toEqual([
      'pinned: br0 port vnet0 (ofport 2, 52:54:00:00:00:0a): pinned to 192.168.129.10 (and the bridge program)',
    ]);
    expect(ovs.bundles).toHaveLength(1);
    expect(ovs.bundles[0]!.split('\n')[0]).toBe('delete cookie=0x7c4e100000000000/-1');
    expect(ovs.bundles[0]).toContain(`delete cookie=0x${cookieOf('port', 2).toString(16)}/-1`);
  });

  it('started: the same program in place: nothing run', async () => {
    const ovs = fakeOvs();
    await pin(ovs, [nic]);
    const again = await pin(ovs, [nic]);
    expect(again.outcomes.map((o) => o.result)).toEqual(['current']);
    expect(ovs.bundles).toHaveLength(1);
  });

  it('reconnect without an address (backend down): a different program in place is kept, not downgraded', async () => {
    const ovs = fakeOvs();
    await pin(ovs, [nic]);
    const bare: PinNic = { mac: nic.mac, vmUuid: nic.vmUuid };
    const again = await pin(ovs, [bare]);
    expect(again.outcomes.map((o) => o.result)).toEqual(['kept']);
    expect(ovs.bundles).toHaveLength(1);
  });

  it('start without an address: a DHCP-only program (closed until the sync adds the address)', async () => {
    const ovs = fakeOvs();
    const noIp: PinNic = { mac: nic.mac, vmUuid: nic.vmUuid, gatewayMac: '52:54:00:ff:00:01' };
    const result = await pin(ovs, [noIp]);
    expect(result.outcomes[0]?.detail).toContain('pinned without an address (DHCP only)');
    expect(ovs.bundles[0]).not.toContain('nw_src=192');
  });

  it('a bridge without port security, a named bridge that does not exist: left alone, nothing run', async () => {
    const ovs = fakeOvs({ policy: false });
    expect((await pin(ovs, [nic])).outcomes.map((o) => o.result)).toEqual(['unsecured']);
    expect((await pin(ovs, [{ ...nic, mac: '52:54:00:00:00:99', bridge: 'br-none' }])).outcomes[0]?.detail).toBe(
      'bridge br-none does not exist',
    );
    expect(ovs.bundles).toEqual([]);
  });

  it('OVS down: one reason for all NICs, nothing else tried', async () => {
    const result = await pin(fakeOvs({ down: true }), [nic, { ...nic, mac: '52:54:00:00:00:0b' }]);
    expect(result).toEqual({
      outcomes: [],
      error: 'ovs-vsctl failed (exit 1) listing ports: database connection failed (No such file)',
    });
  });
});

describe('pinning at start without reading stamps (the port is new)', () => {
  it('installs the bridge program and the port program in one bundle, without a dump', async () => {
    const ovs = fakeOvs();
    const context = { run: ovs.run, timeoutMs: () => 1000 };
    const state = await observeForPin(context, [nic], { stamps: false });
    expect(state.stamps).toBeUndefined();
    const result = await pinNics(context, state, [nic]);
    expect(result.outcomes.map((o) => o.result)).toEqual(['pinned']);
    expect(ovs.bundles[0]?.split('\n')[0]).toBe('delete cookie=0x7c4e100000000000/-1');
  });

  it('without the gateway MAC (the backend down), the port program only: a bridge program is never downgraded', async () => {
    const ovs = fakeOvs();
    await pin(ovs, [nic]);
    const context = { run: ovs.run, timeoutMs: () => 1000 };
    const bare: PinNic = { mac: nic.mac, vmUuid: nic.vmUuid };
    await pinNics(context, await observeForPin(context, [bare], { stamps: false }), [bare]);
    expect(ovs.bundles[1]).not.toContain('0x7c4e100000000000');
  });
});

describe('unpinning at stopped', () => {
  it("removes exactly the port's cookie", async () => {
    const ovs = fakeOvs();
    await pin(ovs, [nic]);
    const context = { run: ovs.run, timeoutMs: () => 1000 };
    const result = await unpinNics(context, await observeForPin(context, [nic]), [nic]);
    expect(result.outcomes.map((o) => o.result)).toEqual(['unpinned']);
    expect(ovs.bundles[1]).toBe('delete cookie=0x7c4e200000000002/-1\n');
  });

  it('two ports with the MAC of one VM (a migration on one host): left to the sync', async () => {
    const ovs = fakeOvs({
      ports: [
        ['vnet0', 2, MAC, VM],
        ['vnet1', 3, MAC, VM],
      ],
    });
    const context = { run: ovs.run, timeoutMs: () => 1000 };
    const result = await unpinNics(context, await observeForPin(context, [nic]), [nic]);
    expect(result.outcomes[0]?.result).toBe('failed');
    expect(result.outcomes[0]?.detail).toContain('2 ports carry MAC 52:54:00:00:00:0a of this VM (vnet0, vnet1');
    expect(ovs.bundles).toEqual([]);
  });

  it('no time left in the run: not tried', async () => {
    const ovs = fakeOvs();
    const context = { run: ovs.run, timeoutMs: () => 0 };
    expect((await observeForPin(context, [nic])).error).toBe(
      'ovs-vsctl not run listing ports: no time left in this run',
    );
  });
});
