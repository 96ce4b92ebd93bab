import fc from 'fast-check';
import { intToIpv4 } from '../../src/site/address.js';

const nameChars = 'abcdefghijklmnopqrstuvwxyz0123456789-_'.split('');

/** A valid network/portgroup name. */
export const arbName = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'.split('')),
    fc.array(fc.constantFrom(...nameChars), { maxLength: 12 }),
  )
  .map(([first, rest]) => first + rest.join(''));

/** A valid MAC in libvirt's range, in random case. */
export const arbMac = fc
  .tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 3, maxLength: 3 }), fc.boolean())
  .map(([tail, upper]) => {
    const mac = ['52', '54', '00', ...tail.map((b) => b.toString(16).padStart(2, '0'))].join(':');
    return upper ? mac.toUpperCase() : mac;
  });

/**
 * A valid site file (as data): 1-4 networks on distinct VLANs, bridges and
 * non-overlapping subnets (each inside its own 10.K.0.0/16), random DHCP
 * ranges, MTUs, portgroups, policies, reservations and SSH access (off, or
 * a port range of its own).
 */
export const arbSiteInput = fc
  .uniqueArray(fc.integer({ min: 0, max: 250 }), { minLength: 1, maxLength: 4 })
  .chain((blocks) =>
    fc
      .tuple(
        fc.uniqueArray(arbName, { minLength: blocks.length, maxLength: blocks.length }),
        fc.uniqueArray(fc.integer({ min: 1, max: 4094 }), {
          minLength: blocks.length * 4,
          maxLength: blocks.length * 4,
        }),
        fc.array(
          fc.record({
            prefix: fc.integer({ min: 16, max: 28 }),
            a: fc.nat(),
            b: fc.nat(),
            mtu: fc.option(fc.integer({ min: 576, max: 9000 }), { nil: undefined }),
            kind: fc.constantFrom('secure', 'service', 'datain', 'custom'),
            mode: fc.constantFrom('vlan', 'trunk'),
            portgroups: fc.integer({ min: 0, max: 3 }),
            defaultGroup: fc.boolean(),
            reservation: fc.option(arbMac, { nil: undefined }),
            ssh: fc.constantFrom('off', 'own range', 'kind default'),
          }),
          { minLength: blocks.length, maxLength: blocks.length },
        ),
      )
      .map(([names, vlans, shapes]) => {
        const networks: Record<string, unknown> = {};
        blocks.forEach((block, i) => {
          const shape = shapes[i]!;
          const first = 10 * 2 ** 24 + block * 65536;
          const size = 2 ** (32 - shape.prefix);
          const hosts = size - 2; // usable addresses first+1 .. first+size-2
          const gateway = first + 1;
          const lo = first + 2 + (shape.a % (hosts - 1));
          const hi = first + 2 + (shape.b % (hosts - 1));
          const [start, end] = lo <= hi ? [lo, hi] : [hi, lo];
          const pgVlans = vlans.slice(blocks.length + i * 3, blocks.length + i * 3 + shape.portgroups);
          networks[names[i]!] = {
            kind: shape.kind,
            ...(shape.kind === 'custom' ? { egress: 'open', dns: 'open' } : {}),
            bridge: `br${i}-${names[i]!.slice(0, 8)}`,
            vlan: vlans[i]!,
            uplink: { parent: `eth${i}`, mode: shape.mode },
            subnet: `${intToIpv4(first)}/${shape.prefix}`,
            gateway: intToIpv4(gateway),
            dhcp: { start: intToIpv4(start), end: intToIpv4(end) },
            ...(shape.mtu === undefined ? {} : { mtu: shape.mtu }),
            portgroups: pgVlans.map((_vlan, g) => ({ name: `pg${g}`, default: shape.defaultGroup && g === 0 })),
            // The last byte is the network's index: no MAC is reserved on two networks.
            reservations:
              shape.reservation === undefined
                ? []
                : [{ mac: `${shape.reservation.slice(0, 15)}${i.toString(16).padStart(2, '0')}`, ip: intToIpv4(end) }],
            // Each network's SSH ports of its own (the kind's default only on the first: two would overlap).
            ...(shape.ssh === 'off' || (shape.ssh === 'kind default' && i > 0) ? { ssh: { enabled: false } } : {}),
            ...(shape.ssh === 'own range' ? { ssh: { ports: `${10000 + i * 1000}-${10999 + i * 1000}` } } : {}),
          };
        });
        return { name: names[0]!, networks };
      }),
  );
