import { describe, expect, it } from 'vitest';
import { backendActionSubject, describeBackendAction } from '../../../src/backend/setup/describe.js';
import { backendCommandsFor } from '../../../src/backend/setup/execute.js';
import type { ObservedBackend } from '../../../src/backend/setup/model.js';
import { renderBackendNmKeyfiles } from '../../../src/backend/setup/nmconnection.js';
import { parseSysctlLines } from '../../../src/backend/setup/observe.js';
import { planBackend, renderSysctlFile } from '../../../src/backend/setup/plan.js';
import { parseIpAddr } from '../../../src/exec/ip-json.js';
import { backendSetupChecks } from '../../../src/host/doctor/backend-plan-checks.js';
import { parseSiteText } from '../../../src/site/load.js';
import { convergedBackend, UNIT_TEXT } from '../../support/backend-setup.js';

const site = parseSiteText(`
name: lab
backend: { uplink: wan0, trunk: bond0 }
networks:
  secure: { preset: secure, mtu: 9000 }
  service: { preset: service, gatewayInterface: gw-service }
`);
const withUnit = { unitText: UNIT_TEXT };
const converged = () => convergedBackend(site);

/** A backend namespace with only its cables: the trunk, the uplink, the management link (and gw-service, a given interface). */
function bare(): ObservedBackend {
  return {
    links: [
      { name: 'bond0', up: true, addresses: [], mtu: 9000 },
      { name: 'gw-service', up: false, addresses: [], mtu: 1500, kind: 'veth' },
      { name: 'wan0', up: true, addresses: ['203.0.113.1/24'], mtu: 1500 },
      { name: 'mgmt0', up: true, addresses: ['198.18.0.1/24'], mtu: 1500 },
    ],
    sysctls: {
      'net/ipv4/ip_forward': 0,
      'net/ipv4/conf/all/rp_filter': 0,
      'net/ipv4/conf/all/arp_ignore': 0,
      'net/ipv4/conf/all/arp_announce': 0,
      'net/ipv4/conf/all/arp_filter': 0,
      'net/ipv4/conf/gw-service/rp_filter': 2,
      'net/ipv4/conf/gw-service/arp_ignore': 0,
      'net/ipv4/conf/gw-service/arp_announce': 0,
      'net/ipv4/conf/gw-service/arp_filter': 0,
      'net/ipv6/conf/all/disable_ipv6': 0,
      'net/ipv6/conf/gw-service/disable_ipv6': 0,
    },
    networkManager: false,
    systemd: false,
  };
}

describe('planBackend', () => {
  it('on a bare namespace: interfaces and addresses, forwarding and the gateway sysctls, the boot-time file', () => {
    const actions = planBackend(site, bare(), { netns: 'bk', root: '/r' });
    expect(actions.map(describeBackendAction)).toEqual([
      'create VLAN interface bond0.1081 (parent bond0, VLAN 1081, mtu 9000) with ip link',
      'add address 192.168.128.1/17 to bond0.1081',
      'set interface bond0.1081 up',
      'set interface gw-service up',
      'add address 192.168.122.1/24 to gw-service',
      'set net/ipv4/ip_forward = 1 (was 0)',
      'set net/ipv4/conf/bond0.1081/rp_filter = 1',
      'set net/ipv4/conf/bond0.1081/src_valid_mark = 1',
      'set net/ipv4/conf/bond0.1081/arp_ignore = 1',
      'set net/ipv4/conf/bond0.1081/arp_announce = 2',
      'set net/ipv4/conf/bond0.1081/arp_filter = 1',
      'set net/ipv6/conf/bond0.1081/disable_ipv6 = 1',
      'set net/ipv4/conf/gw-service/rp_filter = 1 (was 2)',
      'set net/ipv4/conf/gw-service/src_valid_mark = 1',
      'set net/ipv4/conf/gw-service/arp_ignore = 1 (was 0)',
      'set net/ipv4/conf/gw-service/arp_announce = 2 (was 0)',
      'set net/ipv4/conf/gw-service/arp_filter = 1 (was 0)',
      'set net/ipv6/conf/gw-service/disable_ipv6 = 1 (was 0)',
      'set net/ipv4/conf/wan0/src_valid_mark = 1',
      'write /r/etc/sysctl.d/60-ticrypt-net.conf (boot-time sysctl settings)',
    ]);
  });

  it('turns IPv6 off on the gateway interfaces only where the kernel has IPv6', () => {
    const noIpv6 = bare();
    delete (noIpv6.sysctls as Record<string, number>)['net/ipv6/conf/all/disable_ipv6'];
    const lines = planBackend(site, noIpv6, { netns: 'bk' }).map(describeBackendAction);
    expect(lines.filter((l) => l.includes('ipv6'))).toEqual([]);
  });

  it('a converged backend needs nothing', () => {
    expect(planBackend(site, converged(), withUnit)).toEqual([]);
  });

  it('with NetworkManager, the VLAN interface and its address are one connection', () => {
    const actions = planBackend(site, { ...bare(), networkManager: true }, { netns: 'bk' });
    expect(actions[0]).toMatchObject({ kind: 'create-vlan-interface', method: 'nmcli', address: '192.168.128.1/17' });
    expect(actions[1]).toEqual({ kind: 'set-link-up', interface: 'bond0.1081' });
    expect(backendCommandsFor(actions[0]!)[0]).toEqual([
      'nmcli',
      ...['connection', 'add', 'type', 'vlan', 'con-name', 'ticrypt-net-bond0.1081', 'ifname', 'bond0.1081'],
      ...['dev', 'bond0', 'id', '1081', 'mtu', '9000'],
      ...['ipv4.method', 'manual', 'ipv4.addresses', '192.168.128.1/17', 'ipv6.method', 'disabled'],
      ...['connection.autoconnect', 'yes'],
    ]);
  });

  const at = (name: string, change: (l: ObservedBackend['links'][number]) => object) => (o: ObservedBackend) => ({
    ...o,
    links: o.links.map((l) => (l.name === name ? { ...l, ...change(l) } : l)),
  });
  it.each<[string, (o: ObservedBackend) => ObservedBackend, string[]]>([
    [
      'the gateway address removed',
      at('bond0.1081', () => ({ addresses: [] })),
      ['add address 192.168.128.1/17 to bond0.1081'],
    ],
    [
      'a stale address of the subnet (a wrong prefix)',
      at('gw-service', () => ({ addresses: ['192.168.122.1/24', '192.168.122.1/16'] })),
      ["remove address 192.168.122.1/16 from gw-service (network service's gateway is 192.168.122.1/24)"],
    ],
    ['an interface down', at('gw-service', () => ({ up: false })), ['set interface gw-service up']],
    [
      'an MTU below the network',
      at('bond0.1081', () => ({ mtu: 1500 })),
      ['set interface bond0.1081 mtu 9000 (was 1500)'],
    ],
    [
      'forwarding off and a gateway setting lost',
      (o) => ({ ...o, sysctls: { ...o.sysctls, 'net/ipv4/ip_forward': 0, 'net/ipv4/conf/gw-service/arp_ignore': 0 } }),
      ['set net/ipv4/ip_forward = 1 (was 0)', 'set net/ipv4/conf/gw-service/arp_ignore = 1 (was 0)'],
    ],
    [
      'the boot-time file edited',
      (o) => ({ ...o, sysctlFile: 'net/ipv4/ip_forward = 0\n' }),
      ['rewrite /etc/sysctl.d/60-ticrypt-net.conf (boot-time sysctl settings)'],
    ],
    [
      'the unit disabled',
      (o) => ({ ...o, unit: { text: UNIT_TEXT, enabled: false } }),
      ['enable ticrypt-net-backend.service'],
    ],
    [
      'the unit file another version',
      (o) => ({ ...o, unit: { text: 'old', enabled: true } }),
      [
        'rewrite /etc/systemd/system/ticrypt-net-backend.service (systemd unit)',
        'reload systemd (systemctl daemon-reload)',
      ],
    ],
  ])('shows exactly the drift: %s', (_name, change, expected) => {
    expect(planBackend(site, change(converged()), withUnit).map(describeBackendAction)).toEqual(expected);
  });

  it.each<[string, (o: ObservedBackend) => ObservedBackend, string]>([
    [
      'an address outside the subnet on a gateway interface',
      at('gw-service', (l) => ({ addresses: [...l.addresses, '10.0.0.5/24'] })),
      'BLOCKED interface gw-service: it has address(es) 10.0.0.5/24 outside 192.168.122.0/24: the VMs of network service would reach the backend there',
    ],
    [
      'a VLAN interface of another VLAN under the derived name',
      at('bond0.1081', () => ({ vlanId: 1091 })),
      'BLOCKED interface bond0.1081: it is VLAN 1091 on bond0, expected VLAN 1081 on bond0',
    ],
    [
      'the given gateway interface missing',
      (o) => ({ ...o, links: o.links.filter((l) => l.name !== 'gw-service') }),
      'BLOCKED interface gw-service: the gateway interface of network service does not exist',
    ],
    [
      'the trunk missing (the VLAN interface too)',
      (o) => ({ ...o, links: o.links.filter((l) => l.name !== 'bond0' && l.name !== 'bond0.1081') }),
      'BLOCKED interface bond0: the trunk (backend.trunk) does not exist',
    ],
    [
      'the trunk MTU below the network',
      (o) => at('bond0', () => ({ mtu: 1500 }))(at('bond0.1081', () => ({ mtu: 1500 }))(o)),
      "BLOCKED interface bond0: its MTU is 1500, below network secure's 9000",
    ],
    [
      'conf.all.rp_filter loose (overrides strict)',
      (o) => ({ ...o, sysctls: { ...o.sysctls, 'net/ipv4/conf/all/rp_filter': 2 } }),
      'BLOCKED sysctl net/ipv4/conf/bond0.1081/rp_filter: net.ipv4.conf.all.rp_filter is 2',
    ],
    [
      'no uplink',
      (o) => ({ ...o, links: o.links.filter((l) => l.name !== 'wan0') }),
      'BLOCKED interface wan0: the uplink (backend.uplink) does not exist',
    ],
    [
      'the management address on no interface',
      (o) => ({ ...o, links: o.links.filter((l) => l.name !== 'mgmt0') }),
      'BLOCKED address 198.18.0.1: the management address (backend.management.address) is on no interface',
    ],
    [
      'no systemd',
      (o) => ({ ...o, systemd: false }),
      'BLOCKED unit ticrypt-net-backend.service: systemd is not running here',
    ],
  ])('blocked: %s', (_name, change, expected) => {
    const lines = planBackend(site, change(converged()), withUnit).map(describeBackendAction);
    expect(
      lines.some((line) => line.startsWith(expected)),
      lines.join('\n'),
    ).toBe(true);
  });

  it('leaves the unit alone in a namespace and with --no-service', () => {
    const noSystemd = { ...converged(), systemd: false };
    expect(planBackend(site, noSystemd, { netns: 'bk' })).toEqual([]);
    expect(planBackend(site, noSystemd, { noService: true })).toEqual([]);
  });
});

describe('doctor and the backend planner cannot disagree', () => {
  const faults: [string, (o: ObservedBackend) => ObservedBackend][] = [
    ['healthy', (o) => o],
    ['bare', () => ({ ...bare(), systemd: true })],
    ['an address missing', (o) => ({ ...o, links: o.links.map((l) => ({ ...l, addresses: [] })) })],
    ['links down', (o) => ({ ...o, links: o.links.map((l) => ({ ...l, up: false })) })],
    ['settings lost', (o) => ({ ...o, sysctls: {} })],
    ['conf.all overrides', (o) => ({ ...o, sysctls: { ...o.sysctls, 'net/ipv4/conf/all/arp_announce': 1 } })],
    ['no file, no unit', (o) => ({ ...o, sysctlFile: undefined as unknown as string, unit: { enabled: false } })],
  ];
  it.each(faults)('%s: what doctor flags is exactly what the plan acts on; blocked is FAIL', (_name, fault) => {
    const observed = fault(converged());
    const actions = planBackend(site, observed, withUnit);
    const results = backendSetupChecks(site, observed, withUnit);
    const flagged = results.filter((r) => r.status !== 'ok');
    expect(flagged.length > 0).toBe(actions.length > 0);
    // Every action's subject is reported not OK, under its interface, setting, file or unit.
    for (const action of actions) {
      const subject = backendActionSubject(action);
      const name = subject.replace(/^(interface|address|unit|file|sysctl) /, '');
      const iface = /^net\/ipv[46]\/conf\/([^/]+)\//.exec(name)?.[1];
      const reported = flagged.some(
        (r) =>
          r.subject === name ||
          r.subject === iface ||
          (name === 'net/ipv4/ip_forward' && r.id === 'sysctl.ip-forward') ||
          (subject === 'systemd' && r.id === 'service.unit') ||
          (subject.startsWith('file ') && (r.id === 'sysctl.boot' || r.id === 'service.unit')),
      );
      expect(reported, `${describeBackendAction(action)} not reported`).toBe(true);
      if (action.kind === 'blocked')
        expect(flagged.some((r) => r.status === 'fail' && (r.subject === name || r.subject === iface))).toBe(true);
    }
  });
});

describe('doctor on a backend without its trunk', () => {
  it('the VLAN interface that cannot be made is a FAIL, and the trunk a FAIL with the fix', () => {
    const observed = {
      ...converged(),
      links: converged().links.filter((l) => l.name !== 'bond0' && l.name !== 'bond0.1081'),
    };
    const results = backendSetupChecks(site, observed, withUnit).filter((r) => r.id === 'gateway.interface');
    expect(results.map((r) => `${r.status} ${r.subject}`)).toEqual(['fail bond0.1081', 'ok gw-service', 'fail bond0']);
    expect(results[0]!.message).toBe(
      'the interface does not exist, and cannot be created: its parent bond0 is missing',
    );
    expect(results[2]!.fix).toContain('create bond0');
  });
});

describe('backend files and parsers', () => {
  it('the boot-time file lists forwarding and every gateway setting, keys with / (interface names keep their dots)', () => {
    const text = renderSysctlFile(site);
    expect(text).toContain('net/ipv4/ip_forward = 1\n');
    expect(text).toContain('net/ipv4/conf/bond0.1081/rp_filter = 1\n');
    expect(text).toContain('net/ipv4/conf/gw-service/arp_announce = 2\n');
  });

  it('NetworkManager keyfiles: the VLAN (or the given interface) with the gateway address only, marked as ours', () => {
    const [secure, service] = renderBackendNmKeyfiles(site);
    expect(secure!.fileName).toBe('ticrypt-net-bond0.1081.nmconnection');
    for (const line of [
      'type=vlan',
      'parent=bond0',
      'id=1081',
      'mtu=9000',
      'method=manual',
      'address1=192.168.128.1/17',
      'never-default=true',
      'ticrypt-net.managed=yes',
    ]) {
      expect(secure!.text).toContain(`${line}\n`);
    }
    expect(service!.text).toContain('type=ethernet\ninterface-name=gw-service\n');
    expect(service!.text).not.toContain('[vlan]');
  });

  it('reads grep -H lines of /proc/sys and ip -d -j addr (kind, VLAN id, parent)', () => {
    expect(
      parseSysctlLines('/proc/sys/net/ipv4/ip_forward:1\n/proc/sys/net/ipv4/conf/bond0.1081/rp_filter:2\nnoise\n'),
    ).toEqual({
      'net/ipv4/ip_forward': 1,
      'net/ipv4/conf/bond0.1081/rp_filter': 2,
    });
    expect(
      parseIpAddr(
        '[{"ifname":"bond0.1081","link":"bond0","mtu":9000,"flags":["UP"],"linkinfo":{"info_kind":"vlan","info_data":{"protocol":"802.1Q","id":1081}},"addr_info":[{"local":"192.168.128.1","prefixlen":17,"scope":"global"}]},{"ifname":"v","link":"peer","flags":[],"linkinfo":{"info_kind":"veth"}}]',
      ),
    ).toEqual([
      {
        name: 'bond0.1081',
        up: true,
        addresses: ['192.168.128.1/17'],
        mtu: 9000,
        kind: 'vlan',
        vlanId: 1081,
        parent: 'bond0',
      },
      { name: 'v', up: false, addresses: [], kind: 'veth' },
    ]);
  });

  it('the commands: sysctl with a /-key, addresses with broadcast, no shell', () => {
    expect(backendCommandsFor({ kind: 'set-sysctl', key: 'net/ipv4/conf/bond0.1081/rp_filter', value: 1 })).toEqual([
      ['sysctl', '-q', '-w', 'net/ipv4/conf/bond0.1081/rp_filter=1'],
    ]);
    expect(backendCommandsFor({ kind: 'add-address', interface: 'gw', address: '192.168.122.1/24' })).toEqual([
      ['ip', 'addr', 'add', '192.168.122.1/24', 'brd', '+', 'dev', 'gw'],
    ]);
  });
});
