/** Facts the backend's doctor checks judge, and the gatherer that collects them on the backend. */
import { auditFactOf, type AuditFact } from '../../backend/audit/doctor-fact.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendClient } from '../../backend/api/client.js';
import { API_PATHS, type RegistrationsAnswer } from '../../protocol/api.js';
import type { Site } from '../../site/model.js';
import type { BackendPlanOptions, ObservedBackend } from '../../backend/setup/model.js';
import { observeBackend } from '../../backend/setup/observe.js';
import { programRunner, type ProgramRunner } from '../../exec/run.js';
import { parseRoutes, type RouteFact } from './route-facts.js';
import { DEFAULT_STATE_DIR, NFT_TABLE } from '../../names.js';
import { NIC_IDS_MAP, REVOKED_SET } from '../../backend/nft/names.js';

/** A base chain of the ruleset. */
export interface ChainFact {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  readonly hook?: string;
  readonly policy?: string;
}

/** One network's dnsmasq, as its state directory shows it. */
export interface DnsmasqFact {
  readonly network: string;
  readonly pidFile: string;
  readonly pid?: number;
  /** Whether that pid is a live process named dnsmasq. */
  readonly running: boolean;
  readonly confFile: string;
  /** `dhcp-lease-max` from the config (absent: not set, dnsmasq's default 1000; or no config). */
  readonly leaseMax?: number;
  readonly confFound: boolean;
}

/** The store's registrations as the admin API lists them, or why they could not be had. */
export type StoreFact =
  | { readonly ok: true; readonly registrations: readonly { network: string; mac: string; ip: string }[] }
  | { readonly ok: false; readonly message: string };

/** What `nftables.service` would do at boot or reload. */
export interface NftablesServiceFact {
  /** `systemctl is-enabled nftables.service` said `enabled`. */
  readonly enabled: boolean;
  /** The config it loads (`/etc/nftables.conf`). */
  readonly configFile: string;
  /** The config has an uncommented `flush ruleset` (Debian's default does). */
  readonly flushesRuleset: boolean;
}

/** Everything the backend checks look at. */
export interface BackendFacts {
  /** Whether `nft list table inet ticrypt` found it. */
  readonly tablePresent: boolean;
  /**
   * The registered NICs (`nic_ids` keys) whose id is not in `revoked`, as
   * `iface . mac . ip` (absent when the table is missing).
   */
  readonly registered?: readonly string[];
  /** `ip -4 -j rule show` and `ip -6 -j rule show` output (absent: `ip` failed). */
  readonly ipRules?: { readonly v4: string; readonly v6?: string };
  /** `conf/all` and each gateway interface's ARP settings. */
  /** Absent when systemctl is not there to ask. */
  readonly nftablesService?: NftablesServiceFact;
  /** Absent when no admin token was given. */
  readonly store?: StoreFact;
  readonly dnsmasq: readonly DnsmasqFact[];
  /** What `backend apply` manages, as its observer sees it (links, sysctls, files, the unit). */
  readonly setup: ObservedBackend;
  readonly chains: readonly ChainFact[];
  readonly routes: readonly RouteFact[];
  /** The flow audit's logger, when the service was run with `--audit` (its config exists). */
  readonly audit?: AuditFact;
}

/** Where the backend gatherer looks. */
export interface BackendGatherOptions extends Pick<BackendPlanOptions, 'root' | 'netns' | 'noService'> {
  /** Runs nft, ip and grep (default: the real ones, in `netns` when given). */
  readonly run?: ProgramRunner;
  /** Default `/var/lib/ticrypt-net`. */
  readonly stateDir?: string;
  /** The backend API and an admin token, to compare the store with the set. */
  readonly api?: { readonly url: string; readonly token: string; readonly ca?: string };
}

/** Gather the backend facts (a missing piece is a fact, not an error). */
export async function gatherBackendFacts(site: Site, options: BackendGatherOptions = {}): Promise<BackendFacts> {
  const run = options.run ?? programRunner(options.netns === undefined ? {} : { netns: options.netns });
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const table = await run('nft', ['list', 'table', NFT_TABLE.family, NFT_TABLE.name]);
  const tablePresent = table.exitCode === 0;
  const elements = async (kind: 'set' | 'map', name: string) => {
    const listed = await run('nft', ['-j', 'list', kind, NFT_TABLE.family, NFT_TABLE.name, name]);
    return listed.exitCode === 0 ? parseSetElements(listed.stdout) : [];
  };
  // A revoked NIC (deregistered, its elements awaiting the batched delete) does not count as registered.
  const revoked = tablePresent ? new Set((await elements('set', REVOKED_SET)).map(Number)) : new Set<number>();
  const registered = tablePresent
    ? (await elements('map', NIC_IDS_MAP)).flatMap((e) => {
        const [key, id] = e.split(' : ');
        return key !== undefined && !revoked.has(Number(id)) ? [key] : [];
      })
    : undefined;
  const rules4 = await run('ip', ['-4', '-j', 'rule', 'show']);
  const rules6 = await run('ip', ['-6', '-j', 'rule', 'show']);
  const nftablesService = await nftablesServiceFact(run);
  const ruleset = await run('nft', ['-j', 'list', 'ruleset']);
  const setup = await observeBackend(site, { ...options, run });
  const routes = parseRoutes((await run('ip', ['-j', 'route', 'show'])).stdout);
  const dnsmasq = await Promise.all(site.networks.map((n) => dnsmasqFact(join(stateDir, 'dnsmasq', n.name), n.name)));
  const store = options.api === undefined ? undefined : await storeFact(options.api);
  const audit = await auditFactOf(join(stateDir, 'flow-audit'));
  return {
    ...(audit === undefined ? {} : { audit }),
    tablePresent,
    ...(registered === undefined ? {} : { registered }),
    ...(store === undefined ? {} : { store }),
    dnsmasq,
    setup,
    chains: parseChains(ruleset.stdout),
    routes,
    ...(rules4.exitCode === 0
      ? { ipRules: { v4: rules4.stdout, ...(rules6.exitCode === 0 ? { v6: rules6.stdout } : {}) } }
      : {}),
    ...(nftablesService === undefined ? {} : { nftablesService }),
  };
}

/** The config Debian's `nftables.service` loads (`ExecStart=/usr/sbin/nft -f /etc/nftables.conf`). */
export const NFTABLES_CONF = '/etc/nftables.conf';

/** Whether `nftables.service` is enabled and its config flushes the whole ruleset; absent without systemctl. */
async function nftablesServiceFact(run: ProgramRunner): Promise<NftablesServiceFact | undefined> {
  const enabled = await run('systemctl', ['is-enabled', 'nftables.service']);
  if (enabled.exitCode === undefined) return undefined;
  const config = await run('cat', [NFTABLES_CONF]);
  return {
    enabled: enabled.stdout.trim() === 'enabled',
    configFile: NFTABLES_CONF,
    flushesRuleset: config.exitCode === 0 && flushesRuleset(config.stdout),
  };
}

/** Whether an nft config has an uncommented `flush ruleset` statement. */
export function flushesRuleset(config: string): boolean {
  return config
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .some((line) => /(^|;)\s*flush\s+ruleset\b/.test(line));
}

/** A set's or map's elements from `nft -j list set|map`, each as `a . b . c` (a map's as `a . b : value`). */
export function parseSetElements(text: string): string[] {
  const json = safeJson(text) as
    { nftables?: { set?: { elem?: unknown[] }; map?: { elem?: unknown[] } }[] } | undefined;
  const found = json?.nftables?.find((item) => item.set !== undefined || item.map !== undefined);
  const elems = (found?.set ?? found?.map)?.elem ?? [];
  const text1 = (elem: unknown) => {
    const value = (elem as { elem?: { val?: unknown } }).elem?.val ?? elem;
    const concat = (value as { concat?: unknown[] }).concat;
    return Array.isArray(concat) ? concat.map(String).join(' . ') : String(value);
  };
  return elems.map((elem) =>
    found?.map !== undefined && Array.isArray(elem) && elem.length === 2
      ? `${text1(elem[0])} : ${String(elem[1])}`
      : text1(elem),
  );
}

/** The chains of `nft -j list ruleset`. */
export function parseChains(text: string): ChainFact[] {
  const json = safeJson(text) as { nftables?: { chain?: Record<string, unknown> }[] } | undefined;
  return (json?.nftables ?? [])
    .map((item) => item.chain)
    .filter((chain): chain is Record<string, unknown> => chain !== undefined)
    .map((chain) => ({
      family: String(chain.family),
      table: String(chain.table),
      name: String(chain.name),
      ...(typeof chain.hook === 'string' ? { hook: chain.hook } : {}),
      ...(typeof chain.policy === 'string' ? { policy: chain.policy } : {}),
    }));
}

/** A network's dnsmasq from `<dir>/dnsmasq.pid` and `<dir>/dnsmasq.conf`. */
export async function dnsmasqFact(dir: string, network: string): Promise<DnsmasqFact> {
  const pidFile = join(dir, 'dnsmasq.pid');
  const confFile = join(dir, 'dnsmasq.conf');
  const pidText = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
  const pid = /^\d+$/.test(pidText) ? Number(pidText) : undefined;
  const comm = pid === undefined ? '' : (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
  const conf = await readFile(confFile, 'utf8').catch(() => undefined);
  const leaseMax = conf === undefined ? undefined : /^dhcp-lease-max=(\d+)\s*$/m.exec(conf)?.[1];
  return {
    network,
    pidFile,
    ...(pid === undefined ? {} : { pid }),
    running: comm === 'dnsmasq',
    confFile,
    confFound: conf !== undefined,
    ...(leaseMax === undefined ? {} : { leaseMax: Number(leaseMax) }),
  };
}

async function storeFact(api: NonNullable<BackendGatherOptions['api']>): Promise<StoreFact> {
  try {
    const client = new BackendClient({
      url: api.url,
      token: api.token,
      timeoutMs: 5000,
      ...(api.ca === undefined ? {} : { ca: api.ca }),
    });
    const answer = await client.call<Partial<RegistrationsAnswer>>('GET', `${API_PATHS.registrations}?all`);
    return { ok: true, registrations: answer?.registrations ?? [] };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
