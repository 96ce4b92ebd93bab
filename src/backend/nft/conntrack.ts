/**
 * Conntrack cleanup: after a deregistration or a removed allow entry, the
 * connections it allowed are deleted, so flows opened before do not keep
 * flowing (Neutron learned this the hard way). Pure argv builders, and a
 * runner that executes them with the `conntrack` tool through the one
 * program runner (never a shell). May not: delete anything its arguments do
 * not name (every value is a checked address, protocol or port).
 */
import { ConntrackError } from '../../errors/conntrack-error.js';
import { runProgram } from '../../exec/run.js';
import { inNetns } from '../../exec/netns.js';
import { nftCheck } from '../checks.js';
import { intToIpv4 } from '../../site/address.js';
import type { AllowEntry } from '../../protocol/api.js';
import type { NicState } from './delta.js';
import { ipMask } from './shapes.js';
import { sshDeletions } from './ssh.js';

/** Port ranges up to this size get one deletion per port; larger ones delete every port of the destination. */
const MAX_PORTS_EACH = 16;

/** The deletions (`conntrack` argv after `-D`) for the connections one allow entry allowed from `ip`. */
export function entryDeletions(ip: string, entry: AllowEntry): string[][] {
  const source = ['-s', nftCheck.ipv4('ip', ip)];
  const destination: string[] = [];
  if (entry.type === 'address') {
    const subnet = nftCheck.destination('address', entry.address);
    if (subnet.prefix > 0) destination.push('-d', intToIpv4(subnet.first));
    if (subnet.prefix > 0 && subnet.prefix < 32) destination.push('--mask-dst', ipMask(subnet.prefix));
  }
  // A domain's addresses are whatever its answers opened: delete by protocol and port from this VM.
  if (entry.protocol === 'any') return [[...source, ...destination]];
  const protocol = ['-p', entry.protocol];
  const ports = entry.ports;
  if (ports === undefined || ports.to - ports.from + 1 > MAX_PORTS_EACH)
    return [[...source, ...destination, ...protocol]];
  const all: string[][] = [];
  for (let port = nftCheck.port('ports.from', ports.from); port <= nftCheck.port('ports.to', ports.to); port += 1) {
    all.push([...source, ...destination, ...protocol, '--dport', String(port)]);
  }
  return all;
}

/**
 * Every conntrack deletion a change from `before` to `after` calls for: the
 * connections of each allow entry a still-registered NIC lost, and the
 * forwarded SSH connections of a NIC that lost its forward or some of its
 * client networks.
 *
 * A NIC no longer registered needs none for its egress: on an allow-list
 * network every packet it sends, established or not, must match `nic_ids`
 * and not `revoked`, so its open connections stop at their next packet
 * without a scan of the conntrack table (about 12 ms of kernel time per
 * `conntrack -D` here); on an open network, egress does not depend on
 * registration. Its SSH connections are deleted: then the client's next
 * packet finds the port closed.
 */
export function conntrackDeletions(before: readonly NicState[], after: readonly NicState[]): string[][] {
  const deletions: string[][] = [];
  for (const old of before) {
    const ip = nftCheck.ipv4('ip', old.registration.ip);
    const now = after.find((n) => n.registration.mac === old.registration.mac && n.registration.ip === ip);
    if (old.ssh !== undefined) deletions.push(...sshDeletions(ip, old.ssh, now?.ssh));
    if (now === undefined) continue;
    const kept = new Set(now.entries.map((e) => JSON.stringify(e)));
    for (const entry of old.entries) if (!kept.has(JSON.stringify(entry))) deletions.push(...entryDeletions(ip, entry));
  }
  // Domain entries with the same protocol and ports delete the same connections: once (run side by side, twice races).
  return [...new Map(deletions.map((filter) => [filter.join(' '), filter])).values()];
}

/** Deletes conntrack entries; resolves when done (none found is fine). */
export type ConntrackRunner = (filter: readonly string[]) => Promise<void>;

/** A {@link ConntrackRunner} running `conntrack -D FILTER...`, in a namespace when asked; rejects with {@link ConntrackError}. */
export function conntrackRunner(options: { readonly netns?: string } = {}): ConntrackRunner {
  inNetns(options.netns, ['conntrack']);
  return async (filter) => {
    const result = await runProgram(
      'conntrack',
      ['-D', ...filter],
      options.netns === undefined ? {} : { netns: options.netns },
    );
    // conntrack exits 1 with "0 flow entries have been deleted" when nothing matched, and with "such conntrack
    // doesn't exist" when an entry it listed was gone before it deleted it (expired, or a parallel deletion).
    if (result.exitCode === 0 || /0 flow entries|such conntrack doesn't exist/.test(result.stderr)) return;
    throw new ConntrackError(result);
  };
}
