/**
 * Hand-built Ethernet frames for attacks no lab guest's tool makes (a DHCP
 * offer nobody asked for, a router advertisement, a DHCPv6 server message, an
 * ARP whose sender MAC is another's, a neighbour advertisement; and the DHCP
 * discover a guest's real rogue server answers), sent raw from
 * a namespace's interface with `socat INTERFACE:` (one frame per write), and
 * nft counters in the receivers' namespaces (a netdev table on the ingress of
 * their interface: every frame that arrives, before any protocol sees it).
 */
import { execa } from 'execa';
import type { Netns } from './netns.js';

const mac = (s: string) => Buffer.from(s.replaceAll(':', ''), 'hex');
const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));
function ip6(s: string): Buffer {
  const [head = '', tail = ''] = s.split('::');
  const words = (x: string) => (x === '' ? [] : x.split(':').map((w) => Number.parseInt(w, 16)));
  const h = words(head);
  const t = words(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}
function checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += (data[i]! << 8) + (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

function ether(dst: string, src: string, type: number, payload: Buffer): Buffer {
  return Buffer.concat([mac(dst), mac(src), u16(type), payload]);
}
function ipv4(src: string, dst: string, proto: number, payload: Buffer): Buffer {
  const h = Buffer.concat([
    Buffer.from([0x45, 0]),
    u16(20 + payload.length),
    u16(0x1234),
    u16(0),
    Buffer.from([64, proto]),
    u16(0),
    ip4(src),
    ip4(dst),
  ]);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}
function udp4(src: string, dst: string, sport: number, dport: number, data: Buffer): Buffer {
  const u = Buffer.concat([u16(sport), u16(dport), u16(8 + data.length), u16(0), data]);
  const pseudo = Buffer.concat([ip4(src), ip4(dst), Buffer.from([0, 17]), u16(u.length)]);
  u.writeUInt16BE(checksum(Buffer.concat([pseudo, u])) || 0xffff, 6);
  return ipv4(src, dst, 17, u);
}
function ipv6(src: string, dst: string, next: number, payload: Buffer, hops = 255): Buffer {
  return Buffer.concat([
    Buffer.from([0x60, 0, 0, 0]),
    u16(payload.length),
    Buffer.from([next, hops]),
    ip6(src),
    ip6(dst),
    payload,
  ]);
}
function l4v6(src: string, dst: string, next: number, body: Buffer, at: number): Buffer {
  const pseudo = Buffer.concat([
    ip6(src),
    ip6(dst),
    Buffer.from([0, 0]),
    u16(body.length),
    Buffer.from([0, 0, 0, next]),
  ]);
  body.writeUInt16BE(checksum(Buffer.concat([pseudo, body])) || 0xffff, at);
  return ipv6(src, dst, next, body, next === 58 ? 255 : 64);
}

/** An ARP packet (1 request, 2 reply), sender and target as given. */
export function arpFrame(a: {
  src: string;
  dst?: string;
  op: 1 | 2;
  sha: string;
  spa: string;
  tha?: string;
  tpa: string;
}): Buffer {
  const body = Buffer.concat([
    u16(1),
    u16(0x0800),
    Buffer.from([6, 4]),
    u16(a.op),
    mac(a.sha),
    ip4(a.spa),
    mac(a.tha ?? '00:00:00:00:00:00'),
    ip4(a.tpa),
  ]);
  return ether(a.dst ?? 'ff:ff:ff:ff:ff:ff', a.src, 0x0806, body);
}

/** A DHCP offer (BOOTP reply, udp 67 to 68, broadcast), as a rogue server sends it. */
export function dhcpOfferFrame(a: { src: string; sip: string; yiaddr: string }): Buffer {
  const bootp = Buffer.alloc(240);
  bootp.set([2, 1, 6, 0]);
  bootp.writeUInt32BE(0x1234abcd, 4);
  bootp.writeUInt16BE(0x8000, 10);
  ip4(a.yiaddr).copy(bootp, 16);
  ip4(a.sip).copy(bootp, 20);
  Buffer.from('63825363', 'hex').copy(bootp, 236);
  const options = Buffer.concat([
    Buffer.from([53, 1, 2, 54, 4]),
    ip4(a.sip),
    Buffer.from([3, 4]),
    ip4(a.sip),
    Buffer.from([255]),
  ]);
  return ether(
    'ff:ff:ff:ff:ff:ff',
    a.src,
    0x0800,
    udp4(a.sip, '255.255.255.255', 67, 68, Buffer.concat([bootp, options])),
  );
}

/**
 * A DHCP discover (BOOTP request, udp 68 to 67 from 0.0.0.0, broadcast) for
 * client `chaddr`, sent from `src`: what makes a rogue DHCP server answer.
 */
export function dhcpDiscoverFrame(a: { src: string; chaddr: string }): Buffer {
  const bootp = Buffer.alloc(240);
  bootp.set([1, 1, 6, 0]);
  bootp.writeUInt32BE(0x5ec0ffee, 4);
  mac(a.chaddr).copy(bootp, 28);
  Buffer.from('63825363', 'hex').copy(bootp, 236);
  const options = Buffer.from([53, 1, 1, 255]);
  return ether(
    'ff:ff:ff:ff:ff:ff',
    a.src,
    0x0800,
    udp4('0.0.0.0', '255.255.255.255', 68, 67, Buffer.concat([bootp, options])),
  );
}

/** A router advertisement to all nodes (prefix 2001:db8:1::/64). */
export function raFrame(a: { src: string; sip6: string }): Buffer {
  const pio = Buffer.concat([Buffer.from([3, 4, 64, 0xc0]), Buffer.alloc(12), ip6('2001:db8:1::')]);
  pio.writeUInt32BE(86400, 4);
  pio.writeUInt32BE(14400, 8);
  const body = Buffer.concat([
    Buffer.from([134, 0, 0, 0, 64, 0]),
    u16(1800),
    Buffer.alloc(8),
    pio,
    Buffer.from([1, 1]),
    mac(a.src),
  ]);
  return ether('33:33:00:00:00:01', a.src, 0x86dd, l4v6(a.sip6, 'ff02::1', 58, body, 2));
}

/** A neighbour advertisement claiming `target` (override flag set). */
export function naFrame(a: { src: string; sip6: string; target: string }): Buffer {
  const body = Buffer.concat([
    Buffer.from([136, 0, 0, 0, 0xa0, 0, 0, 0]),
    ip6(a.target),
    Buffer.from([2, 1]),
    mac(a.src),
  ]);
  return ether('33:33:00:00:00:01', a.src, 0x86dd, l4v6(a.sip6, 'ff02::1', 58, body, 2));
}

/** A DHCPv6 server message (advertise), udp 547 to 546, to all DHCP agents. */
export function dhcp6AdvertiseFrame(a: { src: string; sip6: string }): Buffer {
  const body = Buffer.concat([u16(547), u16(546), u16(8 + 4), u16(0), Buffer.from([2, 0x12, 0x34, 0x56])]);
  return ether('33:33:00:01:00:02', a.src, 0x86dd, l4v6(a.sip6, 'ff02::1:2', 17, body, 6));
}

/** A link-local IPv6 UDP datagram (to port 9). */
export function udp6Frame(a: { src: string; dst: string; sip6: string; dip6: string }): Buffer {
  const body = Buffer.concat([u16(40000), u16(9), u16(8 + 4), u16(0), Buffer.from('PSEC')]);
  return ether(a.dst, a.src, 0x86dd, l4v6(a.sip6, a.dip6, 17, body, 6));
}

/** Send `frame` from `iface` in `ns`, `count` times (one raw write each). */
export async function sendFrame(ns: Netns, iface: string, frame: Buffer, count = 3): Promise<void> {
  for (let i = 0; i < count; i++) {
    await execa('ip', ['netns', 'exec', ns.name, 'socat', '-u', 'STDIN', `INTERFACE:${iface}`], {
      input: frame,
      timeout: 10_000,
    });
  }
}

/** Named nft counters on the ingress of a namespace's interface: each counts the frames its rule matches. */
export class FrameCounters {
  private constructor(
    private readonly ns: Netns,
    private readonly table: string,
    readonly names: readonly string[],
  ) {}

  /**
   * Count, on `iface` of `ns`, every frame each rule (an nft match, e.g. `udp sport 67`) matches.
   * The table is the test's own (`netdev <table>`): nothing else there is touched.
   */
  static async create(ns: Netns, iface: string, table: string, rules: Record<string, string>): Promise<FrameCounters> {
    const names = Object.keys(rules);
    const script = [
      `table netdev ${table} {`,
      ...names.map((n) => `  counter ${n} { }`),
      `  chain in { type filter hook ingress device "${iface}" priority 0; policy accept;`,
      ...names.map((n) => `    ${rules[n]} counter name "${n}"`),
      '  }',
      '}',
      '',
    ].join('\n');
    await ns.run('nft', ['-f', '-'], { input: script });
    return new FrameCounters(ns, table, names);
  }

  /** Every counter's packets, by name. */
  async read(): Promise<Record<string, number>> {
    const { stdout } = await this.ns.run('nft', ['-j', 'list', 'counters', 'table', 'netdev', this.table]);
    const items = (JSON.parse(stdout) as { nftables: { counter?: { name: string; packets: number } }[] }).nftables;
    return Object.fromEntries(items.filter((i) => i.counter).map((i) => [i.counter!.name, i.counter!.packets]));
  }

  /** Zero every counter. */
  async reset(): Promise<void> {
    await this.ns.run('nft', ['reset', 'counters', 'table', 'netdev', this.table]);
  }

  /** Remove the table. Never throws. */
  async remove(): Promise<void> {
    await this.ns.run('nft', ['delete', 'table', 'netdev', this.table]).catch(() => {});
  }
}
