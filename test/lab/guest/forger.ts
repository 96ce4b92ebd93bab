/**
 * A hostile guest's moves on its L2 network, done with the guest's own tools
 * (iproute2 and busybox `arping`, `udhcpd`) over its command channel, which
 * keeps working whatever the guest does to its network. What each move
 * achieves is for the test to count at its receivers.
 *
 * @example
 * await forge(attacker, { mac: victim.mac, ip: `${victim.ip}/17`, gateway: '192.168.128.1' });
 * await announce(attacker, victim.ip!, 'reply');
 */
import type { Guest } from './guest.js';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const CIDR = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function check(what: string, value: string | undefined, pattern: RegExp): void {
  if (value !== undefined && !pattern.test(value))
    throw new Error(`forger: ${what} ${JSON.stringify(value)} is malformed`);
}

/** Who the guest pretends to be on eth0. */
export interface Disguise {
  /** Take this MAC (eth0 goes down and up). */
  readonly mac?: string;
  /** Take this address (`A.B.C.D/PREFIX`) in place of eth0's addresses. */
  readonly ip?: string;
  /** The default route's next hop, after the address changed. */
  readonly gateway?: string;
}

/**
 * Make the guest pose as another: its MAC and/or IP on eth0, then one
 * gratuitous ARP for the address it now has, so switches and neighbours
 * learn the forged pair. Also lets it send from any address (ip_nonlocal_bind).
 */
export async function forge(guest: Guest, as: Disguise): Promise<void> {
  check('MAC', as.mac, MAC);
  check('address', as.ip, CIDR);
  check('gateway', as.gateway, IPV4);
  const steps = ['sysctl -qw net.ipv4.ip_nonlocal_bind=1'];
  if (as.mac !== undefined) {
    steps.push('ip link set eth0 down', `ip link set eth0 address ${as.mac}`, 'ip link set eth0 up');
  }
  if (as.ip !== undefined) steps.push('ip -4 addr flush dev eth0', `ip addr add ${as.ip} dev eth0`);
  if (as.gateway !== undefined) steps.push(`ip route replace default via ${as.gateway} dev eth0`);
  const ip = as.ip?.split('/')[0];
  if (ip !== undefined) steps.push(`arping -U -c 1 -I eth0 -s ${ip} ${ip}`);
  await guest.sh(steps.join(' && '));
}

/**
 * Claim `ip` by ARP from eth0's current MAC without owning it: a gratuitous
 * request (`arping -U`) or an unsolicited reply (`arping -A`), `count` times.
 */
export async function announce(guest: Guest, ip: string, kind: 'gratuitous' | 'reply', count = 1): Promise<void> {
  check('address', ip, IPV4);
  const flag = kind === 'gratuitous' ? '-U' : '-A';
  await guest.sh(`sysctl -qw net.ipv4.ip_nonlocal_bind=1 && arping ${flag} -c ${count} -I eth0 -s ${ip} ${ip}`);
}

/** A rogue DHCP server's offer. */
export interface RogueOffer {
  /** The first and last address it hands out. */
  readonly start: string;
  readonly end: string;
  /** The router (and DNS server) it tells clients to use: usually the guest itself. */
  readonly router: string;
}

/** Run busybox `udhcpd` on eth0 (in the background; its log is /tmp/udhcpd.log); resolves to its pid. */
export async function rogueDhcp(guest: Guest, offer: RogueOffer): Promise<number> {
  for (const [what, value] of Object.entries(offer)) check(what, value as string, IPV4);
  await guest.sh(
    [
      'cat >/tmp/udhcpd.conf <<EOF',
      `start ${offer.start}`,
      `end ${offer.end}`,
      'interface eth0',
      'lease_file /tmp/udhcpd.leases',
      `option router ${offer.router}`,
      `option dns ${offer.router}`,
      'EOF',
      'touch /tmp/udhcpd.leases',
    ].join('\n'),
  );
  return guest.spawn('udhcpd -f /tmp/udhcpd.conf', 'udhcpd');
}
