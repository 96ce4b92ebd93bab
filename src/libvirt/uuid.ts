import { createHash } from 'node:crypto';

/** The namespace of ticrypt-net's name-based (version 5) UUIDs. */
export const TICRYPT_NET_UUID_NAMESPACE = '6d1c4b8e-3f0a-4f43-9a55-0c7f3b1e2d90';

/**
 * A version 5 (SHA-1, name-based) UUID, RFC 9562: the same namespace and name
 * always give the same UUID.
 */
export function uuidV5(name: string, namespace: string = TICRYPT_NET_UUID_NAMESPACE): string {
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The UUID of a site's libvirt network, derived from the site and network
 * names, so that re-rendering (on any host) gives byte-identical XML.
 *
 * @example networkUuid('ticrypt', 'secure') // same value on every host, every run
 */
export function networkUuid(siteName: string, networkName: string): string {
  return uuidV5(`network/${siteName}/${networkName}`);
}
