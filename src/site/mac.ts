import { createHash, randomBytes } from 'node:crypto';

const MAC_PATTERN = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/** libvirt's (QEMU's) locally administered prefix for generated guest MACs. */
export const LIBVIRT_MAC_PREFIX = '52:54:00';

/**
 * Whether `text` is a unicast MAC address in colon form (`52:54:00:12:34:56`).
 * Multicast addresses (low bit of the first octet set) are not valid for a NIC.
 */
export function isUnicastMac(text: string): boolean {
  if (!MAC_PATTERN.test(text)) return false;
  return (Number.parseInt(text.slice(0, 2), 16) & 1) === 0;
}

/** Lower-case form of a MAC address; the one form stored and compared everywhere. */
export function normalizeMac(text: string): string {
  return text.toLowerCase();
}

/**
 * Generate a MAC in libvirt's `52:54:00` range.
 *
 * With a `seed`, the same seed always gives the same MAC (e.g. the VM UUID plus
 * the NIC index); without one, the last three octets are random.
 *
 * @example generateMac('0b1d...-uuid/0') // '52:54:00:9f:03:c2', every time
 */
export function generateMac(seed?: string): string {
  const tail = seed === undefined ? randomBytes(3) : createHash('sha256').update(seed).digest().subarray(0, 3);
  return [LIBVIRT_MAC_PREFIX, ...[...tail].map((byte) => byte.toString(16).padStart(2, '0'))].join(':');
}
