/**
 * The site's name predicates without zod: for code that must stay light (the
 * hook's bundle reads a bridge's policy with them). `./primitives.ts` builds
 * its zod types on these. May not: import anything.
 */

/** Network, portgroup, site and host names: safe in libvirt, file names, nft and dnsmasq. */
export const NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

/** A Linux interface name: 1-15 characters, no `/`, whitespace or `:`; not `.` or `..`. */
export function isInterfaceName(value: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/.test(value) && value !== '.' && value !== '..';
}
