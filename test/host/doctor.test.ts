import { describe, expect, it } from 'vitest';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { checkBackend } from '../../src/host/doctor/backend-checks.js';
import {
  flushesRuleset,
  parseChains,
  parseSetElements,
  type BackendFacts,
} from '../../src/host/doctor/backend-facts.js';
import { failClosedRules } from '../../src/backend/guard/rules.js';
import { checkHost } from '../../src/host/doctor/host-checks.js';
import type { HostFacts } from '../../src/host/doctor/host-facts.js';
import { doctorExitCode, type CheckResult } from '../../src/host/doctor/result.js';
import { parseRoutes } from '../../src/host/doctor/route-facts.js';
import { actionSubject } from '../../src/host/describe.js';
import type { ObservedHost, ObservedPort } from '../../src/host/model.js';
import { planHost } from '../../src/host/plan.js';
import { hostLayout } from '../../src/host/layout.js';
import { policyExternalIds, policyOf, type BridgePolicy } from '../../src/portsec/policy.js';
import { bridgeIntent, type NetworkView } from '../../src/portsec/intent.js';
import { installed } from '../support/flows.js';
import { parseSiteText } from '../../src/site/load.js';
import { convergedBackend } from '../support/backend-setup.js';

const site = parseSiteText(`
name: lab
networks:
  secure: { preset: secure }
  service: { preset: service }
`);

const port = (name: string, bridge: string, extra: Partial<ObservedPort> = {}): ObservedPort => ({
  name,
  bridge,
  trunks: [],
  externalIds: {},
  type: '',
  options: {},
  interfaceExternalIds: {},
  ...extra,
});

const VM_MAC = '52:54:00:00:00:01';
const VM_UUID = '0b1d2c3e-0000-4000-8000-000000000007';

/** What the backend says on the healthy host: the VM's address, the gateway's MAC. */
function views(): Map<string, NetworkView> {
  return new Map<string, NetworkView>([
    ['secure', { ips: new Map([[VM_MAC, '192.168.129.5']]), gatewayMac: '52:54:00:ff:00:01', groups: [] }],
    ['service', { ips: new Map(), gatewayMac: '52:54:00:ff:00:02', groups: [] }],
  ]);
}

/** The flows as the observed OVS and `view` want them, installed (or, for `except`, as `except` says). */
function flowsOf(observed: ObservedHost, view = views()): NonNullable<ObservedHost['flows']> {
  const targets = site.networks.map((n) => ({ bridge: n.bridge, network: n.name }));
  const bridges = new Map(
    targets.map(({ bridge, network }) => {
      const b = observed.bridges.find((x) => x.name === bridge)!;
      const intent = bridgeIntent(b, policyOf(b.externalIds) as BridgePolicy, observed.ports, view.get(network)!);
      return [bridge, installed(intent)] as const;
    }),
  );
  return { targets, bridges, view };
}

function healthyHost(): HostFacts {
  const observed: ObservedHost = {
    ovsRunning: true,
    networkManager: false,
    bridges: hostLayout(site, undefined).policies.map(({ bridge, policy }) => ({
      name: bridge,
      datapathType: 'system',
      externalIds: policyExternalIds(policy),
      failMode: 'secure',
    })),
    ports: [
      port('bond0.1081', 'br-secure', { tag: 1081, ofport: 1 }),
      port('bond0.1082', 'br-service', { tag: 1082, ofport: 1 }),
      port('vnet0', 'br-secure', {
        tag: 1081,
        ofport: 2,
        interfaceExternalIds: { 'iface-id': 'x', 'attached-mac': VM_MAC, 'vm-id': VM_UUID },
      }),
    ],
    links: [
      { name: 'bond0.1081', up: true, addresses: [] },
      { name: 'bond0.1082', up: true, addresses: [] },
    ],
    networks: site.networks.map((n) => ({
      name: n.name,
      active: true,
      autostart: true,
      persistent: true,
      xml: renderNetworkXml(site, n),
      connections: 1,
    })),
  };
  return {
    observed: { ...observed, flows: flowsOf(observed) },
    hooks: [
      { path: '/h/qemu', exists: false, executable: false },
      { path: '/h/qemu.d/ticrypt-net', exists: true, executable: true, interpreter: ['/bin/sh'], mtimeMs: 1000 },
    ],
    libvirtdStartMs: 2000,
    hookConfig: { path: '/c/hook.yaml', exists: true, url: 'http://198.18.0.1:8443', tokenFile: '/c/token' },
    backend: { url: 'http://198.18.0.1:8443', ok: true, outcome: 'ok', message: 'answered' },
    routes: [{ dst: 'default' }, { dst: '10.0.0.0/24', dev: 'bond0' }],
  };
}

function healthyBackend(): BackendFacts {
  return {
    tablePresent: true,
    registered: ['bond0.1081 . 52:54:00:00:00:01 . 192.168.129.5'],
    store: {
      ok: true,
      registrations: [
        { network: 'secure', mac: '52:54:00:00:00:01', ip: '192.168.129.5' },
        { network: 'service', mac: '52:54:00:00:00:02', ip: '192.168.122.5' },
      ],
    },
    dnsmasq: site.networks.map((n) => ({
      network: n.name,
      pidFile: `/s/${n.name}/dnsmasq.pid`,
      pid: 7,
      running: true,
      confFile: `/s/${n.name}/dnsmasq.conf`,
      confFound: true,
      leaseMax: 40000,
    })),
    setup: convergedBackend(site),
    chains: [{ family: 'inet', table: 'ticrypt', name: 'forward', hook: 'forward', policy: 'drop' }],
    routes: [
      { dst: '192.168.128.0/17', dev: 'bond0.1081' },
      { dst: '192.168.122.0/24', dev: 'bond0.1082' },
    ],
    ipRules: { v4: listedRules(4), v6: listedRules(6) },
    nftablesService: { enabled: true, configFile: '/etc/nftables.conf', flushesRuleset: false },
  };
}

/** The site's fail-closed rules as `ip -j rule show` lists them. */
function listedRules(family: 4 | 6): string {
  return JSON.stringify([
    { priority: 0, src: 'all', table: 'local' },
    ...failClosedRules(site)
      .filter((r) => r.family === family)
      .map((r) => ({
        priority: r.pref,
        src: 'all',
        ...(r.to === undefined ? {} : { dst: r.to.split('/')[0], dstlen: Number(r.to.split('/')[1]) }),
        fwmark: '0',
        fwmask: `0x${r.mark.toString(16)}`,
        iif: r.iif,
        action: 'blackhole',
      })),
  ]);
}

const notOk = (results: CheckResult[]) =>
  results.filter((r) => r.status !== 'ok').map((r) => `${r.status} ${r.id} ${r.subject}`);

describe('host checks on fixture facts', () => {
  it('a healthy host is all OK', () => {
    const results = checkHost(site, undefined, healthyHost());
    expect(notOk(results)).toEqual([]);
    expect(doctorExitCode(results)).toBe(0);
  });

  const h = healthyHost;
  it.each<[string, () => HostFacts, string, string]>([
    [
      'OVS down',
      () => ({ ...h(), observed: { ...h().observed, ovsRunning: false } }),
      'fail ovs.running Open vSwitch',
      'systemctl start openvswitch-switch',
    ],
    [
      'an address on the VLAN interface',
      () => ({
        ...h(),
        observed: {
          ...h().observed,
          links: [
            { name: 'bond0.1081', up: true, addresses: ['10.9.9.9/24'] },
            { name: 'bond0.1082', up: true, addresses: [] },
          ],
        },
      }),
      'fail uplink.interface bond0.1081',
      'ip addr flush dev bond0.1081',
    ],
    [
      'a VM port on the wrong VLAN',
      () => ({
        ...h(),
        observed: { ...h().observed, ports: [...h().observed.ports, port('vnet7', 'br-secure', { tag: 1082 })] },
      }),
      'fail vlan.vm-ports br-secure',
      'tag=1081',
    ],
    [
      'a network definition with another UUID',
      () => ({
        ...h(),
        observed: {
          ...h().observed,
          networks: h().observed.networks.map((n) => ({
            ...n,
            xml: n.xml.replace(/<uuid>[^<]+/, '<uuid>00000000-0000-4000-8000-000000000000'),
          })),
        },
      }),
      'fail network.definition secure',
      'shut down or migrate the VMs on secure',
    ],
    [
      "the hook's bundle gone (the checkout it ran from removed)",
      () => ({
        ...h(),
        hooks: [
          h().hooks[0]!,
          {
            ...h().hooks[1]!,
            parts: [
              { name: 'node', path: '/usr/bin/node', present: true },
              { name: 'bundle', path: '/old/checkout/dist/hook/hook.cjs', present: false },
            ],
          },
        ],
      }),
      'fail hook.parts /h/qemu.d/ticrypt-net',
      'ticrypt-net hook install',
    ],
    [
      '#!/usr/bin/env',
      () => ({ ...h(), hooks: [h().hooks[0]!, { ...h().hooks[1]!, interpreter: ['/usr/bin/env', 'node'] }] }),
      'warn hook.interpreter /h/qemu.d/ticrypt-net',
      '#!/usr/bin/node',
    ],
    [
      'libvirtd not running',
      () => {
        const rest: HostFacts = { ...h() };
        delete (rest as { libvirtdStartMs?: number }).libvirtdStartMs;
        return rest;
      },
      'fail hook.loaded /h/qemu.d/ticrypt-net',
      'start libvirtd',
    ],
    [
      'no hook config',
      () => {
        const rest: HostFacts = { ...h() };
        delete (rest as { backend?: unknown }).backend;
        return { ...rest, hookConfig: { path: '/c/hook.yaml', exists: false } };
      },
      'warn backend.reachable /c/hook.yaml',
      'backendUrl, tokenFile',
    ],
    [
      'a VM subnet overlapping a route',
      () => ({ ...h(), routes: [{ dst: '192.168.122.0/23', dev: 'eth1' }] }),
      'fail routes.overlap 192.168.122.0/24',
      'change the site subnet',
    ],
  ])('%s', (_name, facts, expected, fix) => {
    const results = checkHost(site, undefined, facts());
    expect(notOk(results)).toContain(expected);
    expect(results.find((r) => `${r.status} ${r.id} ${r.subject}` === expected)?.fix).toContain(fix);
  });
});

describe('doctor and the planner cannot disagree', () => {
  const PLANNED =
    /^(ovs\.running|bridge\.present|bridge\.port-security|bridge\.uplink|vlan\.uplink|uplink\.interface|network\.)/;
  const o = () => healthyHost().observed;
  const faults: [string, (observed: ObservedHost) => ObservedHost][] = [
    ['healthy', (x) => x],
    ['OVS down', (x) => ({ ...x, ovsRunning: false })],
    ['a bridge missing', (x) => ({ ...x, bridges: x.bridges.slice(1) })],
    [
      'a bridge on another datapath',
      (x) => ({ ...x, bridges: x.bridges.map((b) => ({ ...b, datapathType: 'netdev' })) }),
    ],
    ['an uplink port missing', (x) => ({ ...x, ports: x.ports.slice(1) })],
    ['an uplink port untagged', (x) => ({ ...x, ports: x.ports.map(({ tag: _tag, ...rest }) => rest) })],
    ['an uplink port on another bridge', (x) => ({ ...x, ports: x.ports.map((p) => ({ ...p, bridge: 'br-x' })) })],
    [
      'a leftover port of ours',
      (x) => ({ ...x, ports: [...x.ports, port('old0', 'br-secure', { externalIds: { 'ticrypt-net': 'managed' } })] }),
    ],
    ['a VLAN interface missing', (x) => ({ ...x, links: x.links.slice(1) })],
    [
      'a bridge in fail_mode standalone',
      (x) => ({ ...x, bridges: x.bridges.map((b) => ({ ...b, failMode: 'standalone' })) }),
    ],
    [
      'a bridge without its policy',
      (x) => ({ ...x, bridges: x.bridges.map((b, i) => (i === 0 ? { ...b, externalIds: {} } : b)) }),
    ],
    ['a VLAN interface down', (x) => ({ ...x, links: x.links.map((l) => ({ ...l, up: false })) })],
    [
      'an address on a VLAN interface',
      (x) => ({ ...x, links: x.links.map((l) => ({ ...l, addresses: ['10.9.9.9/24'] })) }),
    ],
    ['a network missing', (x) => ({ ...x, networks: x.networks.slice(1) })],
    ['a network stopped', (x) => ({ ...x, networks: x.networks.map((n) => ({ ...n, active: false })) })],
    ['autostart off', (x) => ({ ...x, networks: x.networks.map((n) => ({ ...n, autostart: false })) })],
    [
      'a definition differing, unused',
      (x) => ({
        ...x,
        networks: x.networks.map((n) => ({
          ...n,
          connections: 0,
          xml: n.xml.replace(/<uuid>[^<]+/, '<uuid>00000000-0000-4000-8000-000000000000'),
        })),
      }),
    ],
    [
      'a definition differing, in use',
      (x) => ({
        ...x,
        networks: x.networks.map((n) => ({
          ...n,
          xml: n.xml.replace(/<uuid>[^<]+/, '<uuid>00000000-0000-4000-8000-000000000000'),
        })),
      }),
    ],
  ];

  it.each(faults)('%s: what doctor flags is exactly what the plan acts on; blocked is FAIL', (_name, fault) => {
    const observed = fault(o());
    const actions = planHost(site, undefined, observed);
    const results = checkHost(site, undefined, { ...healthyHost(), observed }).filter((r) => PLANNED.test(r.id));
    const flagged = new Set(results.filter((r) => r.status !== 'ok').map((r) => r.subject));
    const planned = new Set(actions.map((a) => actionSubject(a).replace(/^(bridge|port|interface|network) /, '')));
    expect([...flagged].sort()).toEqual([...planned].sort());
    for (const action of actions.filter((a) => a.kind === 'blocked')) {
      const subject = actionSubject(action).replace(/^(bridge|port|interface|network) /, '');
      expect(results.filter((r) => r.subject === subject).some((r) => r.status === 'fail')).toBe(true);
    }
  });
});

describe('port security checks', () => {
  const h = healthyHost;
  const flowResults = (facts: HostFacts) =>
    checkHost(site, undefined, facts).filter((r) => r.id === 'flows.programs' || r.id === 'bridge.port-security');

  it('a healthy host: each bridge secure with its policy, each program in place', () => {
    expect(flowResults(h()).map((r) => `${r.status} ${r.id} ${r.subject}: ${r.message}`)).toEqual([
      'ok bridge.port-security br-secure: fail_mode=secure, peers gateway, ipv6 off',
      'ok bridge.port-security br-service: fail_mode=secure, peers all, ipv6 off',
      'ok flows.programs br-secure: 2 program(s) in place, canary present',
      'ok flows.programs br-service: 1 program(s) in place, canary present',
    ]);
  });

  it('the canary gone (ovs-vswitchd restarted): FAIL with every program missing, fixed by host flows', () => {
    const facts = h();
    const flows = facts.observed.flows!;
    const bridges = new Map(flows.bridges);
    bridges.set('br-secure', { canary: false, stamps: new Map(), counts: new Map() });
    const [secure] = flowResults({ ...facts, observed: { ...facts.observed, flows: { ...flows, bridges } } }).filter(
      (r) => r.id === 'flows.programs',
    );
    expect(secure).toMatchObject({ status: 'fail', subject: 'br-secure' });
    expect(secure!.message).toBe(
      'the canary is gone (ovs-vswitchd lost its flows?); install bridge flows br-secure: missing; install port flows br-secure vnet0 (ofport 2, 52:54:00:00:00:01): missing',
    );
    expect(secure!.fix).toContain('ticrypt-net host flows');
  });

  it("a VM's address changed at the backend: its program is stale", () => {
    const facts = h();
    const view = new Map(facts.observed.flows!.view as Map<string, NetworkView>);
    view.set('secure', { ...view.get('secure')!, ips: new Map([[VM_MAC, '192.168.129.6']]) });
    const results = flowResults({
      ...facts,
      observed: { ...facts.observed, flows: { ...facts.observed.flows!, view } },
    });
    expect(results.find((r) => r.subject === 'br-secure' && r.id === 'flows.programs')?.message).toBe(
      'install port flows br-secure vnet0 (ofport 2, 52:54:00:00:00:01): stale',
    );
  });

  it('without a hook configuration or an answering backend, flows are a WARN: not checked', () => {
    const facts = h();
    const unobserved = { ...facts.observed };
    delete unobserved.flows;
    expect(flowResults({ ...facts, observed: unobserved }).at(-1)).toMatchObject({
      status: 'warn',
      message: 'not checked: no hook configuration to ask the backend with',
    });
    const down = { ...facts.observed.flows!, view: { error: 'Backend http://x unreachable' } };
    expect(flowResults({ ...facts, observed: { ...facts.observed, flows: down } }).at(-1)).toMatchObject({
      status: 'warn',
      message: 'not checked: the backend could not be asked what the flows should be (Backend http://x unreachable)',
    });
  });
});

describe('backend checks on fixture facts', () => {
  it('a healthy backend is all OK (open networks stay out of the registered set)', () => {
    expect(notOk(checkBackend(site, healthyBackend()))).toEqual([]);
  });

  const b = healthyBackend;
  it.each<[string, () => BackendFacts, string, string]>([
    ['table missing', () => ({ ...b(), tablePresent: false }), 'fail nft.table inet ticrypt', 'backend serve'],
    [
      'set differs from the store',
      () => ({ ...b(), registered: ['secure . 52:54:00:00:00:09 . 192.168.129.9'] }),
      'fail nft.registered set registered',
      'rebuilds the table from the store',
    ],
    [
      'dnsmasq not running',
      () => ({ ...b(), dnsmasq: b().dnsmasq.map((d) => ({ ...d, running: false })) }),
      'fail dnsmasq.running secure',
      'restart the backend service',
    ],
    [
      'lease limit below the range (dnsmasq default 1000)',
      () => ({ ...b(), dnsmasq: b().dnsmasq.map((d) => ({ ...d, leaseMax: undefined }) as unknown as typeof d) }),
      'fail dnsmasq.lease-max secure',
      'dhcp-lease-max=32510',
    ],
    [
      'forwarding off',
      () => ({ ...b(), setup: { ...b().setup, sysctls: { ...b().setup.sysctls, 'net/ipv4/ip_forward': 0 } } }),
      'fail sysctl.ip-forward net.ipv4.ip_forward',
      'sysctl -w net.ipv4.ip_forward=1',
    ],
    [
      "Docker's forward chain",
      () => ({
        ...b(),
        chains: [...b().chains, { family: 'ip', table: 'filter', name: 'FORWARD', hook: 'forward', policy: 'drop' }],
      }),
      'fail nft.foreign-forward ip filter FORWARD',
      'DOCKER-USER',
    ],
    [
      'a VM subnet routed elsewhere',
      () => ({ ...b(), routes: [...b().routes, { dst: '192.168.129.0/24', dev: 'wg0' }] }),
      'fail routes.overlap 192.168.128.0/17',
      'remove the conflicting',
    ],
    [
      'a fail-closed rule missing',
      () => ({ ...b(), ipRules: { v4: JSON.stringify(JSON.parse(listedRules(4)).slice(0, -1)), v6: listedRules(6) } }),
      'fail guard.ip-rules ip rule',
      'ip -4 rule add pref 103 iif eth0 to 192.168.122.0/24 fwmark 0/0x10000000 blackhole',
    ],
    [
      'ARP answered for every local address',
      () => ({
        ...b(),
        setup: { ...b().setup, sysctls: { ...b().setup.sysctls, 'net/ipv4/conf/bond0.1081/arp_ignore': 0 } },
      }),
      'fail sysctl.gateway bond0.1081',
      'ticrypt-net backend apply',
    ],
  ])('%s', (_name, facts, expected, fix) => {
    const results = checkBackend(site, facts());
    expect(notOk(results)).toContain(expected);
    expect(results.find((r) => `${r.status} ${r.id} ${r.subject}` === expected)?.fix).toContain(fix);
    expect(doctorExitCode(results)).toBe(1);
  });

  it("warns when nftables.service would flush the ruleset, and takes conf/all's stricter ARP values", () => {
    const facts: BackendFacts = {
      ...b(),
      nftablesService: { enabled: true, configFile: '/etc/nftables.conf', flushesRuleset: true },
      setup: {
        ...b().setup,
        sysctls: {
          ...b().setup.sysctls,
          ...Object.fromEntries(
            ['arp_ignore', 'arp_announce', 'arp_filter'].flatMap((key) => [
              [`net/ipv4/conf/all/${key}`, key === 'arp_announce' ? 2 : 1],
              ...site.networks.map((n) => [`net/ipv4/conf/${n.gatewayInterface}/${key}`, 0]),
            ]),
          ),
        },
      },
    };
    const results = checkBackend(site, facts);
    expect(notOk(results)).toEqual(['warn nft.nftables-service nftables.service']);
    expect(doctorExitCode(results)).toBe(0);
    expect(flushesRuleset('#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n}\n')).toBe(true);
    expect(flushesRuleset('# flush ruleset\ntable inet filter {}\n')).toBe(false);
  });

  it('parses nft and ip JSON', () => {
    expect(
      parseSetElements(
        '{"nftables":[{"metainfo":{}},{"set":{"name":"registered","elem":[{"concat":["secure","52:54:00:00:00:01","192.168.129.5"]}]}}]}',
      ),
    ).toEqual(['secure . 52:54:00:00:00:01 . 192.168.129.5']);
    expect(
      parseSetElements(
        '{"nftables":[{"map":{"name":"nic_ids","map":"mark","elem":[[{"concat":["g1","52:54:00:00:00:01","192.168.129.1"]},7]]}}]}',
      ),
    ).toEqual(['g1 . 52:54:00:00:00:01 . 192.168.129.1 : 7']);
    expect(
      parseChains(
        '{"nftables":[{"chain":{"family":"ip","table":"other","name":"dfwd","hook":"forward","policy":"drop"}}]}',
      ),
    ).toEqual([{ family: 'ip', table: 'other', name: 'dfwd', hook: 'forward', policy: 'drop' }]);
    expect(parseRoutes('[{"dst":"default","dev":"eth0"},{"dst":"10.1.2.3","dev":"x"}]')).toEqual([
      { dst: 'default', dev: 'eth0' },
      { dst: '10.1.2.3/32', dev: 'x' },
    ]);
  });
});
