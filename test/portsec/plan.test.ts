import { describe, expect, it } from 'vitest';
import type { ObservedBridge, ObservedPort } from '../../src/host/model.js';
import { parseFlowDump, programKey } from '../../src/portsec/dump.js';
import { bridgeIntent, type NetworkView } from '../../src/portsec/intent.js';
import { describeFlowAction, planFlows } from '../../src/portsec/plan.js';
import { policyExternalIds, policyOf, type BridgePolicy } from '../../src/portsec/policy.js';
import { installed } from '../support/flows.js';

const policy: BridgePolicy = {
  network: 'secure',
  peers: 'groups',
  ipv6: 'off',
  gateway: '192.168.128.1',
  uplink: 'bond0.1081',
};
const bridge: ObservedBridge = {
  name: 'br-secure',
  datapathType: 'system',
  externalIds: policyExternalIds(policy),
  failMode: 'secure',
};
const port = (name: string, ofport: number, extra: Partial<ObservedPort> = {}): ObservedPort => ({
  name,
  bridge: 'br-secure',
  trunks: [],
  externalIds: {},
  type: '',
  options: {},
  interfaceExternalIds: {},
  ofport,
  ...extra,
});
const vm = (name: string, ofport: number, mac: string) =>
  port(name, ofport, { tag: 1081, interfaceExternalIds: { 'attached-mac': mac, 'vm-id': `uuid-${name}` } });
const ports = [
  port('bond0.1081', 1, { tag: 1081, externalIds: { 'ticrypt-net': 'managed' } }),
  port('br-secure', 65534, { type: 'internal' }),
  port('mirror0', 4),
  vm('vnet0', 2, '52:54:00:00:00:0a'),
  vm('vnet1', 3, '52:54:00:00:00:0b'),
  port('vnet9', 9, { interfaceExternalIds: { 'attached-mac': 'not-a-mac' } }),
];
const view: NetworkView = {
  gatewayMac: '52:54:00:ff:00:01',
  ips: new Map([
    ['52:54:00:00:00:0a', '192.168.129.10'],
    ['52:54:00:00:00:0b', '192.168.129.11'],
  ]),
  groups: [
    {
      id: 7,
      name: 'lab',
      members: [
        { mac: '52:54:00:00:00:0a', ip: '192.168.129.10' },
        { mac: '52:54:00:00:00:0c', ip: '192.168.129.12' },
      ],
    },
    { id: 8, name: 'elsewhere', members: [{ mac: '52:54:00:00:00:0d', ip: '192.168.129.13' }] },
  ],
};

describe('intents', () => {
  const intent = bridgeIntent(bridge, policy, ports, view);

  it("the bridge's, one per group with a member here, one per VM port", () => {
    expect(intent.programs.map((p) => p.label)).toEqual([
      'bridge',
      'group 7 (lab)',
      'port vnet0 (ofport 2, 52:54:00:00:00:0a)',
      'port vnet1 (ofport 3, 52:54:00:00:00:0b)',
    ]);
  });

  it('non-VM ports pass by NORMAL (not the bridge itself, not a port with a bad attached-mac); the uplink is vetted', () => {
    const flows = intent.programs[0]!.program.flows;
    expect(flows).toContain('table=0,priority=100,in_port=4,actions=NORMAL');
    expect(flows).toContain('table=0,priority=100,in_port=1,actions=goto_table:30');
    expect(flows.some((f) => f.includes('in_port=9') || f.includes('in_port=65534'))).toBe(false);
  });

  it('a group member elsewhere is admitted from the uplink; a VM without a group reaches the gateway only', () => {
    expect(intent.programs[1]!.program.flows).toEqual([
      'table=30,priority=30,dl_src=52:54:00:00:00:0c,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=set_field:7->reg6,goto_table:31',
    ]);
    expect(intent.programs[2]!.program.flows.filter((f) => f.includes('00:00:0c'))).toHaveLength(2);
    expect(intent.programs[3]!.program.flows.some((f) => f.includes('reg6=7') || f.includes('00:00:0c'))).toBe(false);
  });

  it('reads a policy back from external_ids; a broken one names its key', () => {
    expect(policyOf(policyExternalIds(policy))).toEqual(policy);
    expect(policyOf({})).toBeUndefined();
    expect(policyOf({ ...policyExternalIds(policy), 'ticrypt-net-peers': 'everyone' })).toBe('bad ticrypt-net-peers');
  });
});

describe('planFlows', () => {
  const intent = bridgeIntent(bridge, policy, ports, view);
  const plan = (observation: Parameters<typeof planFlows>[1] extends ReadonlyMap<string, infer O> ? O : never) =>
    planFlows([intent], new Map([['br-secure', observation]])).map(describeFlowAction);

  it('everything in place: nothing to do', () => {
    expect(plan(installed(intent))).toEqual([]);
  });

  it('the canary gone (ovs-vswitchd lost every flow): everything missing, bridge first', () => {
    expect(plan({ canary: false, stamps: new Map() })).toEqual([
      'install bridge flows br-secure: missing',
      'install group flows br-secure 7 (lab): missing',
      'install port flows br-secure vnet0 (ofport 2, 52:54:00:00:00:0a): missing',
      'install port flows br-secure vnet1 (ofport 3, 52:54:00:00:00:0b): missing',
    ]);
  });

  it('a stale stamp, a flow deleted by hand, a port gone, a group gone', () => {
    const o = installed(intent);
    const stamps = new Map(o.stamps);
    const counts = new Map(o.counts);
    stamps.set(programKey('port', 2), 0xdeadbeef);
    counts.set(programKey('port', 3), (counts.get(programKey('port', 3)) ?? 0) - 1);
    stamps.set(programKey('port', 12), 1);
    counts.set(programKey('group', 9), 3);
    expect(plan({ canary: true, stamps, counts })).toEqual([
      'install port flows br-secure vnet0 (ofport 2, 52:54:00:00:00:0a): stale',
      'install port flows br-secure vnet1 (ofport 3, 52:54:00:00:00:0b): partial',
      'remove flows br-secure group 9: group gone',
      'remove flows br-secure port with ofport 12: port gone',
    ]);
  });
});

describe('reading dumps', () => {
  it('the canary, stamps and counts of our cookies; other cookies ignored', () => {
    const text = [
      'OFPST_FLOW reply (OF1.4) (xid=0x2):',
      ' cookie=0x7c4e100000000000, duration=1.2s, table=99, n_packets=0, n_bytes=0, priority=0 actions=drop',
      ' cookie=0x7c4e100000000000, duration=1.2s, table=99, n_packets=0, n_bytes=0, priority=1,metadata=0x1b73ccaf actions=drop',
      ' cookie=0x7c4e200000000007, duration=1.2s, table=99, n_packets=0, n_bytes=0, priority=2,metadata=0x6ed82951,in_port=7 actions=drop',
      ' cookie=0x7c4e200000000007, duration=1.2s, table=0, n_packets=4, n_bytes=9, priority=100,in_port=7 actions=goto_table:10',
      ' cookie=0x7c4e300000000005, duration=1.2s, table=99, n_packets=0, n_bytes=0, priority=3,reg6=0x5,metadata=0x6c88e3b4 actions=drop',
      ' cookie=0x1234, duration=1.2s, table=99, n_packets=0, n_bytes=0, priority=2,metadata=0x1,in_port=8 actions=drop',
      ' cookie=0x0, duration=1.2s, table=0, n_packets=0, n_bytes=0, priority=0 actions=NORMAL',
    ].join('\n');
    const o = parseFlowDump(text, true);
    expect(o.canary).toBe(true);
    expect([...o.stamps]).toEqual([
      ['bridge:0', 0x1b73ccaf],
      ['port:7', 0x6ed82951],
      ['group:5', 0x6c88e3b4],
    ]);
    expect(o.counts?.get('port:7')).toBe(2);
    expect(parseFlowDump(text.split('\n').slice(0, 1).join('\n'), false)).toEqual({ canary: false, stamps: new Map() });
    expect(() => parseFlowDump('ovs-ofctl: br0 is not a bridge', false)).toThrow(
      'E_PROGRAM_OUTPUT'.length ? /dump-flows/ : '',
    );
  });
});
