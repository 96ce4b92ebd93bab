import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cookieOf, exactCookie, parseCookie } from '../../src/portsec/cookie.js';
import {
  bundleText,
  linkLocalOf,
  programAddLines,
  renderBridgeProgram,
  renderGroupProgram,
  renderPortProgram,
  type PortSpec,
} from '../../src/portsec/render.js';
import { programsAvailable } from '../lab/prereq.js';

const gateway: PortSpec = {
  ofport: 7,
  mac: '52:54:00:12:34:56',
  ip: '192.168.129.10',
  tag: 1081,
  peers: 'gateway',
  ipv6: 'off',
  gatewayIp: '192.168.128.1',
  gatewayMac: '52:54:00:ff:00:01',
  uplink: { ofport: 1, tagged: false },
};

describe('cookies', () => {
  it('ticrypt-net prefix, kind, ident; exact matches; foreign cookies are not ours', () => {
    expect(cookieOf('port', 7)).toBe(0x7c4e200000000007n);
    expect(cookieOf('group', 0xffffffff)).toBe(0x7c4e3000ffffffffn);
    expect(exactCookie('bridge', 0)).toBe('0x7c4e100000000000/-1');
    expect(parseCookie(0x7c4e200000000007n)).toEqual({ kind: 'port', ident: 7 });
    expect(parseCookie(0x1234n)).toBeUndefined();
    expect(parseCookie(0x7c4e900000000001n)).toBeUndefined();
    fc.assert(
      fc.property(
        fc.constantFrom('port' as const, 'group' as const),
        fc.integer({ min: 1, max: 0xfeff }),
        (kind, n) => {
          expect(parseCookie(cookieOf(kind, n))).toEqual({ kind, ident: n });
        },
      ),
    );
  });
});

describe("the port program (golden: the research note's program)", () => {
  it('peers gateway, an access uplink: anti-spoofing, to the gateway only, delivery by destination', () => {
    const program = renderPortProgram(gateway);
    expect(program.flows).toEqual([
      'table=0,priority=100,in_port=7,actions=goto_table:10',
      'table=10,priority=110,in_port=7,udp,tp_src=67,actions=drop',
      'table=10,priority=110,in_port=7,udp6,tp_src=547,actions=drop',
      'table=10,priority=110,in_port=7,icmp6,icmp_type=134,actions=drop',
      'table=10,priority=110,in_port=7,icmp6,icmp_type=137,actions=drop',
      'table=10,priority=110,in_port=7,icmp,icmp_type=5,actions=drop',
      'table=10,priority=100,in_port=7,udp,dl_src=52:54:00:12:34:56,nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67,actions=goto_table:20',
      'table=10,priority=100,in_port=7,arp,dl_src=52:54:00:12:34:56,arp_op=1,arp_sha=52:54:00:12:34:56,arp_spa=0.0.0.0,actions=goto_table:20',
      'table=10,priority=100,in_port=7,rarp,dl_src=52:54:00:12:34:56,arp_sha=52:54:00:12:34:56,actions=goto_table:20',
      'table=10,priority=100,in_port=7,arp,dl_src=52:54:00:12:34:56,arp_sha=52:54:00:12:34:56,arp_spa=192.168.129.10,actions=goto_table:20',
      'table=10,priority=100,in_port=7,ip,dl_src=52:54:00:12:34:56,nw_src=192.168.129.10,actions=goto_table:20',
      'table=10,priority=10,in_port=7,actions=drop',
      'table=20,priority=40,in_port=7,dl_dst=52:54:00:ff:00:01,actions=output:1',
      'table=20,priority=40,in_port=7,arp,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_tpa=192.168.128.1,actions=output:1',
      'table=20,priority=40,in_port=7,udp,dl_dst=ff:ff:ff:ff:ff:ff,nw_dst=255.255.255.255,tp_src=68,tp_dst=67,actions=output:1',
      'table=20,priority=40,in_port=7,arp,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=192.168.129.10,arp_tpa=192.168.129.10,actions=output:1',
      'table=20,priority=40,in_port=7,rarp,dl_dst=ff:ff:ff:ff:ff:ff,actions=output:1',
      'table=31,priority=40,reg6=0,dl_dst=52:54:00:12:34:56,actions=output:7',
      'table=31,priority=40,reg6=0,arp,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_tpa=192.168.129.10,actions=output:7',
      'table=20,priority=10,in_port=7,actions=drop',
    ]);
    expect(programAddLines(program).at(-1)).toBe(
      `add cookie=0x7c4e200000000007,table=99,priority=2,in_port=7,metadata=0x${program.digest.toString(16).padStart(8, '0')},actions=drop`,
    );
  });

  it('peers all: NORMAL after the checks; no address: DHCP and probes only', () => {
    const noIp: PortSpec = { ...gateway, peers: 'all' };
    delete (noIp as { ip?: string }).ip;
    const flows = renderPortProgram(noIp).flows;
    expect(flows.filter((f) => f.startsWith('table=20'))).toEqual([
      'table=20,priority=40,in_port=7,actions=NORMAL',
      'table=20,priority=10,in_port=7,actions=drop',
    ]);
    expect(flows.some((f) => f.includes('nw_src=192') || f.includes('arp_spa=192'))).toBe(false);
    expect(flows.some((f) => f.startsWith('table=31'))).toBe(false);
  });

  it('a trunk uplink: the tag pushed on the way out, matched and stripped on the way in', () => {
    const flows = renderPortProgram({ ...gateway, uplink: { ofport: 4, tagged: true } }).flows;
    expect(flows).toContain(
      'table=20,priority=40,in_port=7,dl_dst=52:54:00:ff:00:01,actions=mod_vlan_vid:1081,output:4',
    );
    expect(flows).toContain(
      'table=31,priority=40,reg6=0,dl_vlan=1081,dl_dst=52:54:00:12:34:56,actions=strip_vlan,output:7',
    );
  });

  it('a group: ARP answered on the host, a local member of the same VLAN straight, a remote one by the uplink', () => {
    const flows = renderPortProgram({
      ...gateway,
      peers: 'groups',
      group: {
        id: 5,
        members: [
          { mac: '52:54:00:12:34:56', ip: '192.168.129.10' },
          { mac: '52:54:00:00:00:03', ip: '192.168.129.12' },
          { mac: '52:54:00:00:00:02', ip: '192.168.129.11', local: { ofport: 8, tag: 1081 } },
          { mac: '52:54:00:00:00:04', local: { ofport: 9, tag: 1090 } },
        ],
      },
    }).flows;
    expect(flows.filter((f) => f.includes('52:54:00:00:00:0'))).toEqual([
      'table=20,priority=45,in_port=7,arp,arp_op=1,arp_tpa=192.168.129.11,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:52:54:00:00:00:02->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:52:54:00:00:00:02->arp_sha,set_field:192.168.129.11->arp_spa,IN_PORT',
      'table=20,priority=40,in_port=7,dl_dst=52:54:00:00:00:02,actions=output:8',
      'table=20,priority=45,in_port=7,arp,arp_op=1,arp_tpa=192.168.129.12,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:52:54:00:00:00:03->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:52:54:00:00:00:03->arp_sha,set_field:192.168.129.12->arp_spa,IN_PORT',
      'table=20,priority=40,in_port=7,dl_dst=52:54:00:00:00:03,actions=output:1',
    ]);
    expect(flows).toContain('table=31,priority=40,reg6=5,dl_dst=52:54:00:12:34:56,actions=output:7');
  });

  it('link-local IPv6: its EUI-64 address only, neighbour discovery pinned', () => {
    expect(linkLocalOf('52:54:00:12:34:56')).toBe('fe80::5054:ff:fe12:3456');
    const flows = renderPortProgram({ ...gateway, peers: 'all', ipv6: 'link-local' }).flows;
    expect(flows).toContain(
      'table=10,priority=100,in_port=7,ipv6,dl_src=52:54:00:12:34:56,ipv6_src=fe80::5054:ff:fe12:3456,actions=goto_table:20',
    );
    expect(flows).toContain('table=10,priority=104,in_port=7,icmp6,icmp_type=136,actions=drop');
  });

  it('refuses a value it cannot write, naming it', () => {
    expect(() => renderPortProgram({ ...gateway, mac: 'ff:ff:ff:ff:ff:ff' })).toThrow(
      'ovs-ofctl input port.mac: expected a unicast MAC address like 52:54:00:12:34:56, found "ff:ff:ff:ff:ff:ff"',
    );
    expect(() => renderPortProgram({ ...gateway, ip: '192.168.129.10,actions=NORMAL' })).toThrow(
      'ovs-ofctl input port.ip: expected an IPv4 address like 192.168.129.10, found "192.168.129.10,actions=NORMAL"',
    );
    expect(() => renderPortProgram({ ...gateway, ofport: 65534 })).toThrow(
      'ovs-ofctl input port.ofport: expected an OpenFlow port number 1-65279, found 65534',
    );
    expect(() => renderGroupProgram({ id: 0, remoteMacs: [] })).toThrow(
      'ovs-ofctl input group.id: expected a group id 1-4294967295, found 0',
    );
  });

  it('the same inputs, the same digest; any change, another', () => {
    expect(renderPortProgram(gateway).digest).toBe(renderPortProgram({ ...gateway }).digest);
    expect(renderPortProgram({ ...gateway, ip: '192.168.129.11' }).digest).not.toBe(renderPortProgram(gateway).digest);
  });
});

describe('the bridge and group programs', () => {
  it('gateway: canary, counted drops, unpinned ports dropped, non-VM ports NORMAL, the uplink vetted', () => {
    expect(
      renderBridgeProgram({
        peers: 'gateway',
        gatewayMac: '52:54:00:ff:00:01',
        uplink: { ofport: 1, tagged: false },
        passPorts: [5, 1, 3],
      }).flows,
    ).toEqual([
      'table=99,priority=0,actions=drop',
      'table=10,priority=0,actions=drop',
      'table=20,priority=0,actions=drop',
      'table=30,priority=0,actions=drop',
      'table=31,priority=0,actions=drop',
      'table=0,priority=1,actions=drop',
      'table=0,priority=100,in_port=3,actions=NORMAL',
      'table=0,priority=100,in_port=5,actions=NORMAL',
      'table=0,priority=100,in_port=1,actions=goto_table:30',
      'table=30,priority=30,dl_src=52:54:00:ff:00:01,actions=goto_table:31',
      'table=31,priority=30,reg6=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=NORMAL',
    ]);
  });

  it('all: the uplink is a port like any non-VM port', () => {
    const flows = renderBridgeProgram({ peers: 'all', uplink: { ofport: 1, tagged: false }, passPorts: [1] }).flows;
    expect(flows).toContain('table=0,priority=100,in_port=1,actions=NORMAL');
    expect(flows.some((f) => f.startsWith('table=30,priority=30'))).toBe(false);
  });

  it("a group: its remote members' unicast admitted, marked with its id", () => {
    expect(renderGroupProgram({ id: 5, remoteMacs: ['52:54:00:00:00:03'] }).flows).toEqual([
      'table=30,priority=30,dl_src=52:54:00:00:00:03,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=set_field:5->reg6,goto_table:31',
    ]);
  });

  it('a bundle deletes each program by its exact cookie before adding it; removals by theirs', () => {
    const port = renderPortProgram(gateway);
    const text = bundleText([{ install: port }, { remove: { kind: 'port', ident: 9 } }]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('delete cookie=0x7c4e200000000007/-1');
    expect(lines.slice(1, -1).every((l) => l.startsWith('add cookie=0x7c4e200000000007,'))).toBe(true);
    expect(lines.at(-1)).toBe('delete cookie=0x7c4e200000000009/-1');
  });
});

const ofctl = programsAvailable('ovs-ofctl');

describe.skipIf(!ofctl)('every rendered flow is one ovs-ofctl accepts (its own parser: parse-flows)', () => {
  it('port (every policy), bridge and group programs', () => {
    const programs = [
      renderPortProgram(gateway),
      renderPortProgram({ ...gateway, peers: 'all', ipv6: 'link-local' }),
      renderPortProgram({
        ...gateway,
        peers: 'groups',
        uplink: { ofport: 4, tagged: true },
        group: { id: 5, members: [{ mac: '52:54:00:00:00:03', ip: '192.168.129.12' }] },
      }),
      renderBridgeProgram({
        peers: 'groups',
        gatewayMac: '52:54:00:ff:00:01',
        uplink: { ofport: 1, tagged: true },
        passPorts: [3],
      }),
      renderGroupProgram({ id: 4294967295, remoteMacs: ['52:54:00:00:00:03'] }),
    ];
    const flows = programs.flatMap(programAddLines).map((line) => line.replace(/^add /, ''));
    const dir = mkdtempSync(join(tmpdir(), 'ticrypt-flows-'));
    try {
      writeFileSync(join(dir, 'flows'), `${flows.join('\n')}\n`);
      const out = execFileSync('ovs-ofctl', ['-O', 'OpenFlow14', 'parse-flows', join(dir, 'flows')], {
        encoding: 'utf8',
      });
      expect(out.match(/OFPT_FLOW_MOD/g)).toHaveLength(flows.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
