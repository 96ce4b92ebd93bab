/**
 * The port-security flow programs, rendered as OpenFlow flow text: one per VM
 * port (anti-spoofing, then the network's peers policy, and its delivery from
 * the uplink), one per bridge (the canary, table defaults, the dispatch of
 * non-VM ports, the gateway's admission from the uplink) and one per group
 * with a member on the bridge (its remote members' admission). Each program
 * carries a digest of its flows, installed as a stamp flow, so drift is read
 * from one small table. Pure; the hook and the host sync render through this
 * one module, so their stamps agree. May not: run anything.
 *
 * Every value is checked before it is written ({@link FlowInputError}).
 */
import { createHash } from 'node:crypto';
import { ALL_OURS, cookieOf, cookieText, exactCookie, STAMP_PRIORITY, TABLE, type ProgramKind } from './cookie.js';
import { flowInteger, flowIpv4, flowMac, flowOfport, flowVlan } from './check.js';
import { FlowInputError } from '../errors/flow-input-error.js';

export { ALL_OURS };

/** Which other VMs a VM reaches (the site's `peers`). */
export type PeersPolicy = 'all' | 'gateway' | 'groups';
/** IPv6 from VM ports (the site's `ipv6`). */
export type Ipv6Policy = 'off' | 'link-local';

/** The port that carries a network's VLAN towards the gateway (vlan mode: the VLAN interface; trunk mode: the patch port). */
export interface UplinkSpec {
  readonly ofport: number;
  /** Whether frames on it carry the VLAN tag (a trunk): pushed on the way out, matched and stripped on the way in. */
  readonly tagged: boolean;
}

/** Another VM of a port's group. */
export interface GroupMemberSpec {
  readonly mac: string;
  /** Its address, when it has one (the host answers ARP for it). */
  readonly ip?: string;
  /** Set when it is a VM port on the same bridge: frames go straight to it (same VLAN tag only). */
  readonly local?: { readonly ofport: number; readonly tag: number };
}

/** A port's group on a `groups` network: the backend's id and the other members (any host). */
export interface PortGroupSpec {
  /** 1 to 2^32-1 (0 in `reg6` means "from the gateway"). */
  readonly id: number;
  readonly members: readonly GroupMemberSpec[];
}

/** What one VM port's program is rendered from. */
export interface PortSpec {
  readonly ofport: number;
  /** The VM's MAC (`external_ids:attached-mac`). */
  readonly mac: string;
  /** Its reserved address; without one, only DHCP and ARP probes pass (closed until it is known). */
  readonly ip?: string;
  /** The port's access VLAN (0: untagged). */
  readonly tag: number;
  readonly peers: PeersPolicy;
  readonly ipv6: Ipv6Policy;
  readonly gatewayIp: string;
  /** Without it (`gateway`, `groups`), the VM cannot unicast to the gateway (closed). */
  readonly gatewayMac?: string;
  /** Without it (`gateway`, `groups`), nothing leaves the port (closed). */
  readonly uplink?: UplinkSpec;
  /** `groups` only; none: the VM reaches the gateway only. */
  readonly group?: PortGroupSpec;
}

/** What a bridge's program is rendered from. */
export interface BridgeSpec {
  readonly peers: PeersPolicy;
  readonly gatewayMac?: string;
  readonly uplink?: UplinkSpec;
  /** Ports that are not VMs' (no `attached-mac`) and pass by NORMAL; the uplink too in `all`. */
  readonly passPorts: readonly number[];
}

/** What a group's program on one bridge is rendered from. */
export interface GroupSpec {
  readonly id: number;
  /** The MACs of members that are not VM ports of this bridge: their unicast from the uplink is admitted. */
  readonly remoteMacs: readonly string[];
}

/** One rendered program. */
export interface FlowProgram {
  readonly kind: ProgramKind;
  /** The ofport (port), the group id (group), 0 (bridge). */
  readonly ident: number;
  /** Its flows, without cookie and without the stamp. */
  readonly flows: readonly string[];
  /** 32 bits of the SHA-256 of the flows: what its stamp carries. */
  readonly digest: number;
}

const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const MULTICAST = '01:00:00:00:00:00/01:00:00:00:00:00';
const UNICAST = '00:00:00:00:00:00/01:00:00:00:00:00';

/** 32 bits of the SHA-256 of a program's flows, one per line. */
export function programDigest(flows: readonly string[]): number {
  return createHash('sha256').update(flows.join('\n')).digest().readUInt32BE(0);
}

function program(kind: ProgramKind, ident: number, flows: string[]): FlowProgram {
  return { kind, ident, flows, digest: programDigest(flows) };
}

/** The stamp flow of a program (its digest in `metadata`; table 99 is never reached by a packet). */
export function stampFlow(kind: ProgramKind, ident: number, digest: number): string {
  const key = kind === 'port' ? `in_port=${ident},` : kind === 'group' ? `reg6=${ident},` : '';
  return `table=${TABLE.stamps},priority=${STAMP_PRIORITY[kind]},${key}metadata=0x${digest.toString(16).padStart(8, '0')},actions=drop`;
}

/** The EUI-64 link-local address of a MAC (`fe80::5054:ff:fe12:3456` for 52:54:00:12:34:56). */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((x) => Number.parseInt(x, 16));
  const words = [
    (((b[0] ?? 0) ^ 2) << 8) | (b[1] ?? 0),
    ((b[2] ?? 0) << 8) | 0xff,
    0xfe00 | (b[3] ?? 0),
    ((b[4] ?? 0) << 8) | (b[5] ?? 0),
  ];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`;
}

function checkUplink(field: string, uplink: UplinkSpec | undefined): UplinkSpec | undefined {
  if (uplink === undefined) return undefined;
  return { ofport: flowOfport(`${field}.ofport`, uplink.ofport), tagged: uplink.tagged === true };
}

function checkPeers(field: string, value: unknown): PeersPolicy {
  if (value === 'all' || value === 'gateway' || value === 'groups') return value;
  throw new FlowInputError(field, "'all', 'gateway' or 'groups'", value);
}

/** The action that sends a frame of a port with VLAN `tag` towards the gateway. */
function toUplink(uplink: UplinkSpec, tag: number): string {
  return `${uplink.tagged && tag > 0 ? `mod_vlan_vid:${tag},` : ''}output:${uplink.ofport}`;
}

/**
 * A VM port's program: frames from the port only with the VM's MAC; ARP only
 * claiming its own address (sender MAC and IP); IPv4 only from its address
 * (DHCP discover/request from 0.0.0.0 and ARP probes before it has one); DHCP
 * and DHCPv6 server traffic, router advertisements and redirects dropped; IPv6
 * per policy; everything else dropped. What passes goes on per the peers
 * policy: `all` to NORMAL; `gateway` and `groups` explicitly to the uplink (the
 * gateway, its ARP, DHCP, own announcements) or a local group member, never
 * to NORMAL (which floods broadcasts and unknown unicast to the other VM
 * ports). With `gateway` and `groups` it also holds the port's delivery from
 * the uplink, by destination MAC (and the gateway's ARP requests for its IP).
 *
 * @throws {FlowInputError} `E_FLOW_INPUT` naming the first bad value.
 * @example renderPortProgram({ ofport: 7, mac: '52:54:00:12:34:56', ip: '192.168.129.10', tag: 1081, peers: 'gateway', ipv6: 'off', gatewayIp: '192.168.128.1', gatewayMac: '52:54:00:ff:00:01', uplink: { ofport: 1, tagged: false } })
 */
export function renderPortProgram(spec: PortSpec): FlowProgram {
  const P = flowOfport('port.ofport', spec.ofport);
  const M = flowMac('port.mac', spec.mac);
  const I = spec.ip === undefined ? undefined : flowIpv4('port.ip', spec.ip);
  const tag = flowVlan('port.tag', spec.tag);
  const peers = checkPeers('port.peers', spec.peers);
  if (spec.ipv6 !== 'off' && spec.ipv6 !== 'link-local') {
    throw new FlowInputError('port.ipv6', "'off' or 'link-local'", spec.ipv6);
  }
  const gatewayIp = flowIpv4('port.gatewayIp', spec.gatewayIp);
  const gatewayMac = spec.gatewayMac === undefined ? undefined : flowMac('port.gatewayMac', spec.gatewayMac);
  const uplink = checkUplink('port.uplink', spec.uplink);
  const flows: string[] = [`table=${TABLE.dispatch},priority=100,in_port=${P},actions=goto_table:${TABLE.spoof}`];
  const spoof = (priority: number, match: string, action: string) =>
    flows.push(`table=${TABLE.spoof},priority=${priority},in_port=${P},${match},actions=${action}`);
  const pass = `goto_table:${TABLE.peers}`;
  // Never from a VM, whatever its addresses: DHCP and DHCPv6 server traffic, router advertisements, redirects.
  spoof(110, 'udp,tp_src=67', 'drop');
  spoof(110, 'udp6,tp_src=547', 'drop');
  spoof(110, 'icmp6,icmp_type=134', 'drop');
  spoof(110, 'icmp6,icmp_type=137', 'drop');
  spoof(110, 'icmp,icmp_type=5', 'drop');
  // A DHCP client before it has its address; ARP probes (RFC 5227) claim nothing; QEMU's RARP announce.
  spoof(100, `udp,dl_src=${M},nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67`, pass);
  spoof(100, `arp,dl_src=${M},arp_op=1,arp_sha=${M},arp_spa=0.0.0.0`, pass);
  spoof(100, `rarp,dl_src=${M},arp_sha=${M}`, pass);
  if (I !== undefined) {
    spoof(100, `arp,dl_src=${M},arp_sha=${M},arp_spa=${I}`, pass);
    spoof(100, `ip,dl_src=${M},nw_src=${I}`, pass);
  }
  if (spec.ipv6 === 'link-local') {
    const lla = linkLocalOf(M);
    spoof(105, `icmp6,dl_src=${M},ipv6_src=${lla},icmp_type=136,icmp_code=0,nd_target=${lla}`, pass);
    spoof(104, 'icmp6,icmp_type=136', 'drop');
    spoof(105, `icmp6,dl_src=${M},icmp_type=135,icmp_code=0,nd_sll=${M}`, pass);
    spoof(105, `icmp6,dl_src=${M},icmp_type=135,icmp_code=0,nd_sll=00:00:00:00:00:00`, pass);
    spoof(104, 'icmp6,icmp_type=135', 'drop');
    spoof(100, `icmp6,dl_src=${M},ipv6_src=::,icmp_type=143`, pass);
    spoof(100, `ipv6,dl_src=${M},ipv6_src=${lla}`, pass);
  }
  flows.push(`table=${TABLE.spoof},priority=10,in_port=${P},actions=drop`);

  const peer = (priority: number, match: string, action: string) =>
    flows.push(
      `table=${TABLE.peers},priority=${priority},in_port=${P}${match === '' ? '' : `,${match}`},actions=${action}`,
    );
  if (peers === 'all') {
    peer(40, '', 'NORMAL');
  } else {
    const out = uplink === undefined ? undefined : toUplink(uplink, tag);
    if (out !== undefined) {
      if (gatewayMac !== undefined) peer(40, `dl_dst=${gatewayMac}`, out);
      peer(40, `arp,dl_dst=${BROADCAST},arp_op=1,arp_tpa=${gatewayIp}`, out);
      peer(40, `udp,dl_dst=${BROADCAST},nw_dst=255.255.255.255,tp_src=68,tp_dst=67`, out);
      // Its own announcements after a migration: a gratuitous ARP, QEMU's RARP.
      if (I !== undefined) peer(40, `arp,dl_dst=${BROADCAST},arp_spa=${I},arp_tpa=${I}`, out);
      peer(40, `rarp,dl_dst=${BROADCAST}`, out);
    }
    const group = peers === 'groups' ? spec.group : undefined;
    const groupId =
      group === undefined ? undefined : flowInteger('port.group.id', group.id, 1, 0xffffffff, 'a group id');
    if (group !== undefined) {
      const members = group.members
        .map((m, i) => ({
          mac: flowMac(`port.group.members[${i}].mac`, m.mac),
          ...(m.ip === undefined ? {} : { ip: flowIpv4(`port.group.members[${i}].ip`, m.ip) }),
          ...(m.local === undefined
            ? {}
            : {
                local: {
                  ofport: flowOfport(`port.group.members[${i}].local.ofport`, m.local.ofport),
                  tag: flowVlan(`port.group.members[${i}].local.tag`, m.local.tag),
                },
              }),
        }))
        .filter((m) => m.mac !== M)
        .sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
      for (const member of members) {
        if (member.ip !== undefined) {
          // The host answers ARP for a group member: no broadcast leaves the port.
          peer(
            45,
            `arp,arp_op=1,arp_tpa=${member.ip}`,
            [
              'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]',
              `set_field:${member.mac}->eth_src`,
              'set_field:2->arp_op',
              'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]',
              'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]',
              `set_field:${member.mac}->arp_sha`,
              `set_field:${member.ip}->arp_spa`,
              'IN_PORT',
            ].join(','),
          );
        }
        if (member.local !== undefined) {
          if (member.local.tag === tag) peer(40, `dl_dst=${member.mac}`, `output:${member.local.ofport}`);
        } else if (out !== undefined) {
          peer(40, `dl_dst=${member.mac}`, out);
        }
      }
    }
    // Delivery from the uplink (table 30 vetted the source: reg6 0 is the gateway, else the group).
    const vlan = uplink?.tagged === true && tag > 0 ? `dl_vlan=${tag},` : '';
    const deliver = `${vlan === '' ? '' : 'strip_vlan,'}output:${P}`;
    flows.push(`table=${TABLE.deliver},priority=40,reg6=0,${vlan}dl_dst=${M},actions=${deliver}`);
    if (I !== undefined) {
      flows.push(
        `table=${TABLE.deliver},priority=40,reg6=0,${vlan}arp,dl_dst=${BROADCAST},arp_op=1,arp_tpa=${I},actions=${deliver}`,
      );
    }
    if (groupId !== undefined) {
      flows.push(`table=${TABLE.deliver},priority=40,reg6=${groupId},${vlan}dl_dst=${M},actions=${deliver}`);
    }
  }
  peer(10, '', 'drop');
  return program('port', P, flows);
}

/**
 * A bridge's program: the canary (its absence means OVS lost the flows), a
 * counted drop at the end of every table, `priority=1 drop` in table 0 (a VM
 * port nobody pinned passes nothing), NORMAL for ports that are not VMs'; with
 * `gateway` and `groups`, the uplink to the source check, which admits the
 * gateway's frames (its broadcasts to NORMAL, its unicast to the ports'
 * delivery flows).
 *
 * @throws {FlowInputError} `E_FLOW_INPUT` naming the first bad value.
 */
export function renderBridgeProgram(spec: BridgeSpec): FlowProgram {
  const peers = checkPeers('bridge.peers', spec.peers);
  const gatewayMac = spec.gatewayMac === undefined ? undefined : flowMac('bridge.gatewayMac', spec.gatewayMac);
  const uplink = checkUplink('bridge.uplink', spec.uplink);
  const pass = [...new Set(spec.passPorts.map((p, i) => flowOfport(`bridge.passPorts[${i}]`, p)))]
    .filter((p) => peers === 'all' || p !== uplink?.ofport)
    .sort((a, b) => a - b);
  const flows = [`table=${TABLE.stamps},priority=${STAMP_PRIORITY.canary},actions=drop`];
  for (const table of [TABLE.spoof, TABLE.peers, TABLE.uplink, TABLE.deliver]) {
    flows.push(`table=${table},priority=0,actions=drop`);
  }
  flows.push(`table=${TABLE.dispatch},priority=1,actions=drop`);
  for (const port of pass) flows.push(`table=${TABLE.dispatch},priority=100,in_port=${port},actions=NORMAL`);
  if (peers !== 'all' && uplink !== undefined) {
    flows.push(`table=${TABLE.dispatch},priority=100,in_port=${uplink.ofport},actions=goto_table:${TABLE.uplink}`);
    if (gatewayMac !== undefined) {
      flows.push(`table=${TABLE.uplink},priority=30,dl_src=${gatewayMac},actions=goto_table:${TABLE.deliver}`);
    }
    flows.push(`table=${TABLE.deliver},priority=30,reg6=0,dl_dst=${MULTICAST},actions=NORMAL`);
  }
  return program('bridge', 0, flows);
}

/**
 * A group's program on a bridge with one of its members: the remote members'
 * unicast from the uplink is admitted, marked with the group's id (`reg6`),
 * so table 31 delivers it to this group's ports only. Their ARP is answered by
 * their own host; their broadcasts never cross.
 *
 * @throws {FlowInputError} `E_FLOW_INPUT` naming the first bad value.
 */
export function renderGroupProgram(spec: GroupSpec): FlowProgram {
  const id = flowInteger('group.id', spec.id, 1, 0xffffffff, 'a group id');
  const macs = [...new Set(spec.remoteMacs.map((m, i) => flowMac(`group.remoteMacs[${i}]`, m)))].sort();
  const flows = macs.map(
    (mac) =>
      `table=${TABLE.uplink},priority=30,dl_src=${mac},dl_dst=${UNICAST},actions=set_field:${id}->reg6,goto_table:${TABLE.deliver}`,
  );
  return program('group', id, flows);
}

/** A program's flows as `ovs-ofctl add-flows` lines (cookie first, the stamp last). */
export function programAddLines(p: FlowProgram): string[] {
  const cookie = `cookie=${cookieText(cookieOf(p.kind, p.ident))}`;
  return [...p.flows, stampFlow(p.kind, p.ident, p.digest)].map((flow) => `add ${cookie},${flow}`);
}

/** How many flows a program installs (its stamp included). */
export function programFlowCount(p: FlowProgram): number {
  return p.flows.length + 1;
}

/** A program to remove: its kind and ident. */
export interface ProgramRef {
  readonly kind: ProgramKind;
  readonly ident: number;
}

/**
 * The text of one `ovs-ofctl --bundle add-flows BRIDGE -` transaction: each
 * program installed is first deleted by its exact cookie (an atomic replace),
 * each removal is a delete by exact cookie; in the order given.
 */
export function bundleText(steps: readonly ({ install: FlowProgram } | { remove: ProgramRef })[]): string {
  const lines: string[] = [];
  for (const step of steps) {
    if ('install' in step) {
      lines.push(
        `delete cookie=${exactCookie(step.install.kind, step.install.ident)}`,
        ...programAddLines(step.install),
      );
    } else {
      lines.push(`delete cookie=${exactCookie(step.remove.kind, step.remove.ident)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
