import { describe, expect, it } from 'vitest';
import { describeAction } from '../../src/host/describe.js';
import { commandsFor } from '../../src/host/execute.js';
import { hostLayout } from '../../src/host/layout.js';
import type { ObservedHost, ObservedPort } from '../../src/host/model.js';
import { renderNmKeyfiles } from '../../src/host/nmconnection.js';
import { networkConnections, parseIpAddr, parseOvsState } from '../../src/host/observe.js';
import { planHost } from '../../src/host/plan.js';
import { policyExternalIds } from '../../src/portsec/policy.js';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { parseSiteText } from '../../src/site/load.js';

const site = parseSiteText(`
name: lab
hosts:
  kvm1: {}
  kvm2: { uplink: eno1 }
networks:
  secure: { preset: secure }
  service: { preset: service, uplink: { mode: trunk } }
  datain:
    preset: datain
    uplink: { mode: trunk }
    portgroups: [{ name: extra }]
    mtu: 9000
`);

const bare: ObservedHost = { ovsRunning: true, bridges: [], ports: [], links: [], networks: [], networkManager: false };

function port(name: string, bridge: string, extra: Partial<ObservedPort> = {}): ObservedPort {
  return {
    name,
    bridge,
    trunks: [],
    externalIds: { 'ticrypt-net': 'managed' },
    type: '',
    options: {},
    interfaceExternalIds: {},
    ...extra,
  };
}

/** A bridge as apply leaves it: a network bridge with fail_mode=secure and its port-security policy. */
function appliedBridge(name: string) {
  const policy = hostLayout(site, 'kvm1').policies.find((p) => p.bridge === name)?.policy;
  return {
    name,
    datapathType: 'system',
    externalIds: policy === undefined ? {} : policyExternalIds(policy),
    ...(policy === undefined ? {} : { failMode: 'secure' }),
  };
}

/** The host as apply leaves it on kvm1. */
function converged(): ObservedHost {
  return {
    ovsRunning: true,
    networkManager: false,
    bridges: ['br-uplink', 'br-secure', 'br-service', 'br-datain'].map(appliedBridge),
    ports: [
      port('bond0.1081', 'br-secure', { tag: 1081 }),
      port('br-service-up', 'br-service', { trunks: [1082], type: 'patch' }),
      port('br-service-dn', 'br-uplink', { trunks: [1082], type: 'patch' }),
      port('br-datain-up', 'br-datain', { trunks: [1083], type: 'patch' }),
      port('br-datain-dn', 'br-uplink', { trunks: [1083], type: 'patch' }),
      port('bond0', 'br-uplink', { trunks: [1082, 1083] }),
    ],
    links: [
      { name: 'bond0', up: true, addresses: [], mtu: 9000 },
      { name: 'bond0.1081', up: true, addresses: [], mtu: 1500 },
    ],
    networks: site.networks.map((n) => ({
      name: n.name,
      active: true,
      autostart: true,
      persistent: true,
      xml: renderNetworkXml(site, n),
      connections: 0,
    })),
  };
}

describe('hostLayout', () => {
  it('vlan mode: the sub-interface is an access port of its VLAN; trunk mode: a shared uplink bridge and patch pairs', () => {
    const layout = hostLayout(site, 'kvm1');
    expect(layout.bridges).toEqual(['br-uplink', 'br-secure', 'br-service', 'br-datain']);
    expect(layout.ports).toContainEqual({
      bridge: 'br-secure',
      port: 'bond0.1081',
      tag: 1081,
      trunks: [],
      role: 'uplink',
    });
    expect(layout.ports).toContainEqual({
      bridge: 'br-uplink',
      port: 'bond0',
      trunks: [1082, 1083],
      role: 'uplink',
    });
    expect(layout.ports).toContainEqual({
      bridge: 'br-datain',
      port: 'br-datain-up',
      trunks: [1083],
      peer: 'br-datain-dn',
      role: 'patch',
    });
  });

  it("applies a host's uplink override to parents and derived VLAN interfaces", () => {
    const layout = hostLayout(site, 'kvm2');
    expect(layout.vlanInterfaces).toEqual([{ interface: 'eno1.1081', parent: 'eno1', vlan: 1081, network: 'secure' }]);
    expect(layout.trunkParents).toEqual(['eno1']);
  });

  it('refuses a host the site does not list', () => {
    expect(() => hostLayout(site, 'nope')).toThrow('Unknown host "nope": expected one of kvm1, kvm2');
  });
});

describe('planHost', () => {
  it('on a bare host: interfaces, bridges, ports, then networks', () => {
    const actions = planHost(
      site,
      'kvm1',
      { ...bare, links: [{ name: 'bond0', up: true, addresses: [], mtu: 9000 }] },
      { datapathType: 'netdev' },
    );
    expect(actions.map(describeAction)).toEqual([
      'create VLAN interface bond0.1081 (parent bond0, VLAN 1081) with ip link',
      'set interface bond0.1081 up',
      'create bridge br-uplink (datapath_type=netdev)',
      'create bridge br-secure (datapath_type=netdev, fail_mode=secure, port security peers=gateway ipv6=off)',
      'create bridge br-service (datapath_type=netdev, fail_mode=secure, port security peers=all ipv6=off)',
      'create bridge br-datain (datapath_type=netdev, fail_mode=secure, port security peers=all ipv6=off)',
      'add port bond0.1081 to bridge br-secure tag=1081',
      'add port br-service-up to bridge br-service trunks=1082 (patch, peer br-service-dn)',
      'add port br-service-dn to bridge br-uplink trunks=1082 (patch, peer br-service-up)',
      'add port br-datain-up to bridge br-datain trunks=1083 (patch, peer br-datain-dn)',
      'add port br-datain-dn to bridge br-uplink trunks=1083 (patch, peer br-datain-up)',
      'add port bond0 to bridge br-uplink trunks=1082,1083',
      'define network secure',
      'start network secure',
      'autostart network secure',
      'define network service',
      'start network service',
      'autostart network service',
      'define network datain',
      'start network datain',
      'autostart network datain',
    ]);
  });

  it('uses nmcli when NetworkManager runs', () => {
    const actions = planHost(site, 'kvm1', {
      ...converged(),
      links: [{ name: 'bond0', up: true, addresses: [] }],
      networkManager: true,
    });
    expect(actions[0]).toMatchObject({ kind: 'create-vlan-interface', method: 'nmcli' });
  });

  it('a converged host needs nothing', () => {
    expect(planHost(site, 'kvm1', converged())).toEqual([]);
  });

  it.each([
    [
      'a tag removed',
      (h: ObservedHost) => ({
        ...h,
        ports: h.ports.map((p) => (p.name === 'bond0.1081' ? port(p.name, p.bridge) : p)),
      }),
      ['set port bond0.1081 tag=1081 (was untagged)'],
    ],
    [
      'a network undefined',
      (h: ObservedHost) => ({ ...h, networks: h.networks.filter((n) => n.name !== 'service') }),
      ['define network service', 'start network service', 'autostart network service'],
    ],
    [
      'a network stopped and not autostarted',
      (h: ObservedHost) => ({
        ...h,
        networks: h.networks.map((n) => (n.name === 'secure' ? { ...n, active: false, autostart: false } : n)),
      }),
      ['start network secure', 'autostart network secure'],
    ],
    [
      'a bridge deleted',
      (h: ObservedHost) => ({
        ...h,
        bridges: h.bridges.filter((b) => b.name !== 'br-secure'),
        ports: h.ports.filter((p) => p.bridge !== 'br-secure'),
      }),
      [
        'create bridge br-secure (datapath_type=system, fail_mode=secure, port security peers=gateway ipv6=off)',
        'add port bond0.1081 to bridge br-secure tag=1081',
      ],
    ],
    [
      'the VLAN interface down',
      (h: ObservedHost) => ({ ...h, links: h.links.map((l) => (l.name === 'bond0.1081' ? { ...l, up: false } : l)) }),
      ['set interface bond0.1081 up'],
    ],
    [
      'a stale managed port',
      (h: ObservedHost) => ({ ...h, ports: [...h.ports, port('old0', 'br-secure')] }),
      ['remove port old0 from bridge br-secure (added by ticrypt-net, no longer in the site)'],
    ],
    [
      'a foreign port on a site bridge',
      (h: ObservedHost) => ({ ...h, ports: [...h.ports, port('vnet3', 'br-secure', { externalIds: {}, tag: 1081 })] }),
      [],
    ],
  ] as const)('shows exactly the drift: %s', (_name, change, expected) => {
    expect(planHost(site, 'kvm1', change(converged())).map(describeAction)).toEqual(expected);
  });

  it('redefines a network whose definition differs (the UUID counts)', () => {
    const h = converged();
    const xml = renderNetworkXml(site, site.networks[0]!).replace(
      /<uuid>[^<]+</,
      '<uuid>00000000-0000-4000-8000-000000000000<',
    );
    const actions = planHost(site, 'kvm1', {
      ...h,
      networks: h.networks.map((n) => (n.name === 'secure' ? { ...n, xml } : n)),
    });
    expect(actions.map((a) => a.kind)).toEqual(['define-network', 'start-network', 'autostart-network']);
    expect(actions[0]).toMatchObject({ reason: 'differs', wasActive: true });
    expect(describeAction(actions[0]!)).toContain('uuid: expected');
    expect(commandsFor(actions[0]!).map((c) => c.join(' '))).toEqual([
      'virsh -c qemu:///system net-destroy secure',
      'virsh -c qemu:///system net-undefine secure',
    ]);
  });

  it('blocks instead of redefining a network VMs use', () => {
    const h = converged();
    const xml = renderNetworkXml(site, { ...site.networks[0]!, vlan: 1999 });
    const actions = planHost(site, 'kvm1', {
      ...h,
      networks: h.networks.map((n) => (n.name === 'secure' ? { ...n, xml, connections: 2 } : n)),
    });
    expect(actions).toHaveLength(1);
    expect(describeAction(actions[0]!)).toBe(
      'BLOCKED network secure: its definition differs (vlan: expected 1081, found 1999) and 2 VM interface(s) use it. Instead: shut down or migrate the VMs on secure (virsh -c qemu:///system net-dumpxml secure shows connections), then run host apply again',
    );
  });

  it.each([
    ['OVS down', { ...bare, ovsRunning: false }, 'BLOCKED Open vSwitch'],
    [
      'an address on the VLAN interface',
      {
        ...converged(),
        links: [
          { name: 'bond0', up: true, addresses: [] },
          { name: 'bond0.1081', up: true, addresses: ['192.168.128.9/17'] },
        ],
      },
      'BLOCKED interface bond0.1081: it has address(es) 192.168.128.9/17',
    ],
    [
      'the uplink port on another bridge',
      {
        ...converged(),
        ports: converged().ports.map((p) => (p.name === 'bond0.1081' ? { ...p, bridge: 'br-other' } : p)),
      },
      'BLOCKED port bond0.1081: it is a port of bridge br-other, expected br-secure',
    ],
    ['a bridge on another datapath', converged(), 'BLOCKED bridge br-uplink: datapath_type is system, expected netdev'],
    [
      'an address on the trunk parent (the host would lose it to OVS)',
      {
        ...converged(),
        links: converged().links.map((l) => (l.name === 'bond0' ? { ...l, addresses: ['10.0.0.5/24'] } : l)),
      },
      'BLOCKED interface bond0: it has address(es) 10.0.0.5/24; a trunk port of Open vSwitch hands every frame to OVS, so the host would lose these addresses (its management link, if one of them is). Instead: move them to another interface (or to an OVS internal port), or put these networks in uplink.mode vlan, then run host apply again',
    ],
    [
      "an uplink MTU below the network's",
      {
        ...converged(),
        links: converged().links.map((l) => (l.name === 'bond0' ? { ...l, mtu: 1500 } : l)),
      },
      "BLOCKED interface bond0: its MTU is 1500, below the 9000 the site's networks on it need (larger frames would be dropped). Instead: raise it (ip link set dev bond0 mtu 9000, and in its NetworkManager/ifupdown config; the switch ports too), then run host apply again",
    ],
    [
      'no trunk parent',
      { ...converged(), links: [{ name: 'bond0.1081', up: true, addresses: [] }] },
      'BLOCKED interface bond0: the trunk uplink does not exist',
    ],
  ] as const)('blocked: %s', (_name, observed, expected) => {
    const datapathType = _name === 'a bridge on another datapath' ? 'netdev' : 'system';
    expect(planHost(site, 'kvm1', observed, { datapathType }).map(describeAction)[0]).toContain(expected);
  });
});

describe('executor commands', () => {
  it('marks what it adds and sets patch peers in one ovs-vsctl call', () => {
    expect(commandsFor({ kind: 'add-port', bridge: 'br-x', port: 'br-x-up', trunks: [5, 6], peer: 'br-x-dn' })).toEqual(
      [
        [
          'ovs-vsctl',
          '--timeout=10',
          '--may-exist',
          'add-port',
          'br-x',
          'br-x-up',
          'trunks=5,6',
          '--',
          'set',
          'port',
          'br-x-up',
          'external_ids:ticrypt-net=managed',
          '--',
          'set',
          'interface',
          'br-x-up',
          'type=patch',
          'options:peer=br-x-dn',
        ],
      ],
    );
    expect(
      commandsFor({ kind: 'create-vlan-interface', interface: 'bond0.5', parent: 'bond0', vlan: 5, method: 'ip' }),
    ).toEqual([['ip', 'link', 'add', 'link', 'bond0', 'name', 'bond0.5', 'type', 'vlan', 'id', '5']]);
    expect(
      commandsFor({
        kind: 'create-vlan-interface',
        interface: 'bond0.5',
        parent: 'bond0',
        vlan: 5,
        method: 'nmcli',
      })[0],
    ).toEqual([
      'nmcli',
      'connection',
      'add',
      'type',
      'vlan',
      'con-name',
      'ticrypt-net-bond0.5',
      'ifname',
      'bond0.5',
      'dev',
      'bond0',
      'id',
      '5',
      'ipv4.method',
      'disabled',
      'ipv6.method',
      'disabled',
      'connection.autoconnect',
      'yes',
    ]);
  });
});

describe('observer parsing', () => {
  it('joins ovs-vsctl JSON tables (a set of one is a bare atom)', () => {
    const bridges =
      '{"data":[[["uuid","b1"],"br-a",["uuid","p1"],"netdev",["map",[["ticrypt-net","managed"]]]]],"headings":["_uuid","name","ports","datapath_type","external_ids"]}';
    const ports =
      '{"data":[[["uuid","p1"],"x.5",5,["set",[]],["set",[]],["map",[["ticrypt-net","managed"]]],["uuid","i1"]],[["uuid","p9"],"orphan",["set",[]],["set",[1,2]],["set",[]],["map",[]],["uuid","i9"]]],"headings":["_uuid","name","tag","trunks","vlan_mode","external_ids","interfaces"]}';
    const ifaces =
      '{"data":[[["uuid","i1"],"x.5","",["map",[]],["map",[["iface-id","abc"]]]]],"headings":["_uuid","name","type","options","external_ids"]}';
    expect(parseOvsState(bridges, ports, ifaces)).toEqual({
      ovsRunning: true,
      bridges: [{ name: 'br-a', datapathType: 'netdev', externalIds: { 'ticrypt-net': 'managed' } }],
      ports: [
        {
          name: 'x.5',
          bridge: 'br-a',
          tag: 5,
          trunks: [],
          externalIds: { 'ticrypt-net': 'managed' },
          type: '',
          options: {},
          interfaceExternalIds: { 'iface-id': 'abc' },
        },
      ],
    });
  });

  it("sets a VLAN interface's MTU when its parent allows it", () => {
    const mtuSite = parseSiteText('networks:\n  secure: { preset: secure, mtu: 9000 }\n');
    const observed: ObservedHost = {
      ...bare,
      links: [
        { name: 'bond0', up: true, addresses: [], mtu: 9000 },
        { name: 'bond0.1081', up: true, addresses: [], mtu: 1500 },
      ],
    };
    const links = planHost(mtuSite, undefined, observed).filter((a) => a.kind.includes('link'));
    expect(links.map(describeAction)).toEqual(['set interface bond0.1081 mtu 9000 (was 1500)']);
    expect(commandsFor(links[0]!)).toEqual([['ip', 'link', 'set', 'dev', 'bond0.1081', 'mtu', '9000']]);
    const smallParent = planHost(mtuSite, undefined, {
      ...observed,
      links: observed.links.map((l) => (l.name === 'bond0' ? { ...l, mtu: 1500 } : l)),
    });
    expect(smallParent.map(describeAction).filter((d) => d.includes('mtu') || d.includes('MTU'))).toEqual([
      expect.stringContaining('BLOCKED interface bond0: its MTU is 1500, below the 9000'),
    ]);
    const created = planHost(mtuSite, undefined, { ...bare, links: [observed.links[0]!] })[0]!;
    expect(commandsFor(created)[0]).toContain('mtu');
  });

  it('reads ip -j addr and live network connections', () => {
    const links = parseIpAddr(
      '[{"ifname":"v1","flags":["BROADCAST","UP"],"addr_info":[{"family":"inet","local":"10.1.1.1","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]},{"ifname":"v2","flags":[]}]',
    );
    expect(links).toEqual([
      { name: 'v1', up: true, addresses: ['10.1.1.1/24'] },
      { name: 'v2', up: false, addresses: [] },
    ]);
    expect(networkConnections("<network connections='3'>\n<name>x</name></network>")).toBe(3);
    expect(networkConnections('<network><name>x</name></network>')).toBe(0);
  });
});

describe('NetworkManager keyfiles', () => {
  it('one per VLAN interface: no address, autoconnect, marked managed', () => {
    const files = renderNmKeyfiles(site, 'kvm2');
    expect(files.map((f) => f.fileName)).toEqual(['ticrypt-net-eno1.1081.nmconnection']);
    const text = files[0]!.text;
    for (const line of [
      'type=vlan',
      'interface-name=eno1.1081',
      'autoconnect=true',
      'parent=eno1',
      'id=1081',
      'method=disabled',
      'ticrypt-net.managed=yes',
    ]) {
      expect(text).toContain(`${line}\n`);
    }
    expect(renderNmKeyfiles(site, 'kvm2')).toEqual(files);
  });
});
