/**
 * The benchmarks' VMs: UUID, name and MAC per number, and the 20 allow
 * entries each gets (bench/backend.ts and bench/failclosed.ts).
 */
import type { AllowEntry } from '../src/protocol/api.js';
import type { Store } from '../src/backend/store/store.js';
import type { Network } from '../src/site/model.js';

/** VM n's UUID, name and MAC (n < 2^24). */
export function vm(n: number) {
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  return {
    vmUuid: `0b1d2c3e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    vmName: `bench-vm-${n}`,
    mac: `52:54:00:${hex((n >> 16) & 255)}:${hex((n >> 8) & 255)}:${hex(n & 255)}`,
  };
}

const HOST_PORTS = [443, 80, 22, 5432, 3306, 8443, 53, 123, 9000, 6379, 27017, 5672, 9200, 2049];

/** 20 entries: 14 address:port, 4 CIDRs (/24, /22, /16, /28), 2 port ranges of 11 ports. */
export function entries(n: number): AllowEntry[] {
  const a = (n >> 8) & 255;
  const b = n & 255;
  const list: AllowEntry[] = HOST_PORTS.map((port, i) => ({
    type: 'address',
    address: `10.${a}.${b}.${i + 1}`,
    protocol: port === 53 || port === 123 ? 'udp' : 'tcp',
    ports: { from: port, to: port },
  }));
  list.push(
    { type: 'address', address: `172.16.${b}.0/24`, protocol: 'tcp', ports: { from: 443, to: 443 } },
    { type: 'address', address: `100.64.${(b & 63) * 4}.0/22`, protocol: 'tcp', ports: { from: 80, to: 80 } },
    { type: 'address', address: `10.${200 + (a % 50)}.0.0/16`, protocol: 'tcp', ports: { from: 22, to: 22 } },
    { type: 'address', address: `192.0.2.${(b & 15) * 16}/28`, protocol: 'any' },
    { type: 'address', address: `10.${a}.${b}.200`, protocol: 'tcp', ports: { from: 8080, to: 8090 } },
    { type: 'address', address: `10.${a}.${b}.201`, protocol: 'udp', ports: { from: 60000, to: 60100 } },
  );
  return list;
}

/**
 * Store `count` registered VMs (0 to count-1) on `network`, each with its
 * address, NIC id, 20 allow entries and a placement on its host
 * (`kvm-<n % 50>`, its holder). Call inside a transaction.
 */
export function seedVms(store: Store, network: Network, count: number): void {
  for (let n = 0; n < count; n += 1) {
    const v = vm(n);
    const host = `kvm-${n % 50}`;
    const ip = store.addresses.allocate(network, v.mac);
    const nicId = store.registrations.allocateNicId();
    store.registrations.put({ ...v, hostId: host, network: network.name, ip, generation: 1, nicId });
    store.allowLists.set(v.vmUuid, entries(n));
    store.placements.set(v.vmUuid, [host]);
  }
}
