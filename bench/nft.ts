/**
 * Register/deregister latency of table inet ticrypt at 0 and at 10,000
 * registered VMs with 20 allow entries each, and the full rebuild time.
 * Needs root; runs in a throwaway network namespace.
 *
 *     node --import tsx bench/nft.ts [VMS] [SAMPLES]
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { nftRunner, nicElements, renderChange, renderRuleset, type NicState } from '../src/backend/nft/index.js';
import type { AllowEntry, Registration } from '../src/protocol/api.js';
import { defaultSite } from '../src/site/parse.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const VMS = Number(args[0] ?? 10_000);
const SAMPLES = Number(args[1] ?? 100);
/** `--wide`: one entry per VM is a 1001-port range (about 70 elements per VM instead of 45). */
const WIDE = process.argv.includes('--wide');
const site = defaultSite();
const DOMAINS = ['pypi.org', 'files.pythonhosted.org', 'github.com', 'cran.r-project.org'];

/** VM n's NIC on the secure network. */
function registration(n: number): Registration {
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  return {
    hostId: 'bench',
    vmUuid: `vm-${n}`,
    vmName: `vm${n}`,
    mac: `52:54:00:${hex((n >> 16) & 255)}:${hex((n >> 8) & 255)}:${hex(n & 255)}`,
    network: 'secure',
    ip: `192.168.${129 + ((n >> 8) % 127)}.${n & 255}`,
    generation: 1,
    nicId: n + 1,
  };
}

/** 20 entries: exact address+port, CIDRs, port ranges, ICMP and a shared domain. */
function entries(n: number): AllowEntry[] {
  const a = (n >> 8) & 255;
  const b = n & 255;
  const list: AllowEntry[] = [];
  for (let i = 0; i < 12; i += 1) {
    list.push({
      type: 'address',
      address: `10.${a}.${b}.${i + 1}`,
      protocol: i % 2 ? 'udp' : 'tcp',
      ports: { from: 443 + i, to: 443 + i },
    });
  }
  list.push({ type: 'address', address: `172.16.${b}.0/24`, protocol: 'tcp', ports: { from: 22, to: 22 } });
  list.push({ type: 'address', address: `172.17.${b}.0/22`, protocol: 'tcp', ports: { from: 80, to: 80 } });
  list.push({
    type: 'address',
    address: `100.64.${a}.0/16`.replace(/\.\d+\.0\/16$/, '.0.0/16'),
    protocol: 'tcp',
    ports: { from: 8000 + b, to: 8000 + b },
  });
  list.push({ type: 'address', address: `10.${a}.${b}.100`, protocol: 'tcp', ports: { from: 5000, to: 5010 } });
  list.push({
    type: 'address',
    address: `10.${a}.${b}.101`,
    protocol: 'udp',
    ports: WIDE ? { from: 60000, to: 61000 } : { from: 8080, to: 8090 },
  });
  list.push({ type: 'address', address: `10.${a}.${b}.102`, protocol: 'icmp' });
  list.push({ type: 'address', address: `10.${a}.${b}.103`, protocol: 'any' });
  list.push({
    type: 'domain',
    domain: DOMAINS[n % DOMAINS.length] as string,
    protocol: 'tcp',
    ports: { from: 443, to: 443 },
  });
  return list;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function measure(apply: (s: string) => Promise<void>, base: number) {
  const register: number[] = [];
  const deregister: number[] = [];
  for (let i = 0; i < SAMPLES; i += 1) {
    const nic: NicState = { registration: registration(base + i), entries: entries(base + i) };
    register.push(await timed(() => apply(renderChange({ site }, [], [nic]))));
    deregister.push(await timed(() => apply(renderChange({ site }, [nic], []))));
  }
  return { register, deregister };
}

async function main() {
  const netns = `b${randomBytes(2).toString('hex')}-nft`;
  await execa('ip', ['netns', 'add', netns]);
  try {
    const apply = nftRunner({ netns, timeout: 600_000 });
    const empty = {
      registrations: [],
      allowLists: [
        { vmUuid: 'x', entries: DOMAINS.map((domain) => ({ type: 'domain', domain, protocol: 'tcp' }) as const) },
      ],
    };
    // A domain entry puts no element in the table (the DNS front's answers do): it costs nothing here.
    const holder = { ...registration(900_000), vmUuid: 'x' };
    await apply(renderRuleset(site, { ...empty, registrations: [holder] }));
    const at0 = await measure(apply, 100_000);

    const registrations = Array.from({ length: VMS }, (_, n) => registration(n));
    const state = {
      registrations: [...registrations, holder],
      allowLists: [...registrations.map((r, n) => ({ vmUuid: r.vmUuid, entries: entries(n) })), ...empty.allowLists],
    };
    const started = process.hrtime.bigint();
    const script = renderRuleset(site, state);
    const renderMs = Number(process.hrtime.bigint() - started) / 1e6;
    const rebuildMs = await timed(() => apply(script));
    const perVm = nicElements(site, registrations[0] as Registration, entries(0)).length;
    const atN = await measure(apply, 100_000);

    const row = (what: string, a: number[], b: number[]) => {
      const [p50a, p99a, p50b, p99b] = [percentile(a, 50), percentile(a, 99), percentile(b, 50), percentile(b, 99)];
      console.log(
        `${what.padEnd(11)} p50 ${p50a.toFixed(1)} ms  p99 ${p99a.toFixed(1)} ms @0 | p50 ${p50b.toFixed(1)} ms  p99 ${p99b.toFixed(1)} ms @${VMS} | ratio p50 ${(p50b / p50a).toFixed(2)}`,
      );
      return p50b / p50a;
    };
    console.log(
      `table inet ticrypt: ${VMS} VMs x 20 entries (${perVm} elements per VM${WIDE ? ', --wide' : ''}), ${SAMPLES} samples`,
    );
    const r1 = row('register', at0.register, atN.register);
    const r2 = row('deregister', at0.deregister, atN.deregister);
    console.log(
      `full rebuild at ${VMS}: ${rebuildMs.toFixed(0)} ms (render ${renderMs.toFixed(0)} ms, script ${(script.length / 1e6).toFixed(1)} MB)`,
    );
    const ok = Math.max(r1, r2) <= 1.5 && percentile(atN.register, 50) <= 20 && percentile(atN.deregister, 50) <= 20;
    console.log(`goal (ratio <= 1.5, p50 <= 20 ms): ${ok ? 'met' : 'NOT met'}`);
  } finally {
    await execa('ip', ['netns', 'del', netns], { reject: false });
  }
}

await main();
