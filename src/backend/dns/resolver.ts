/**
 * The front's decisions for one question from one VM: refuse it, deny the
 * name, or resolve it (following and judging each CNAME), open what the
 * answer names for that VM, and only then answer.
 *
 * A name the VM's allow-list does not name is NXDOMAIN (NODATA when a name it
 * does name lies below it), never REFUSED: see DESIGN-NOTES.md.
 */
import { DnsAnswerError } from '../../errors/dns-answer-error.js';
import { dnsOpenElements, type NftElement } from '../nft/elements.js';
import type { Lookup } from './cache.js';
import type { DnsClient } from './clients.js';
import type { OpenReason } from './opener.js';
import type { DomainEntry } from './policy.js';
import { normalizeQueryName } from './names.js';
import type { DnsRecord, Reply } from './wire.js';

/** Why a question got the reply it got: the `result` label of `ticrypt_dns_queries_total`. */
export type Outcome =
  | 'answered'
  | 'nodata'
  | 'nxdomain'
  | 'blocked'
  | 'cname_blocked'
  | 'too_long'
  | 'bad_name'
  | 'refused_type'
  | 'unknown_client'
  | 'servfail';

/** A reply and why. */
export interface Resolution {
  readonly reply: Reply;
  readonly outcome: Outcome;
  /** Addresses left out of the answer: special-use, and no entry names their range. */
  readonly withheld: number;
  /** Whether the final upstream lookup came from the cache. */
  readonly cached?: boolean;
}

/** What the resolver works with. */
export interface ResolverParts {
  /** The client at `ip` on `network` now (re-read after every wait: the registry may have changed it). */
  readonly client: (network: string, ip: string) => DnsClient | undefined;
  readonly lookup: (name: string, type: 'A' | 'CNAME') => Promise<Lookup>;
  /** Opens elements for a NIC; must enter its queue before returning (see `Opener.open`). */
  readonly open: (nic: string, elements: readonly NftElement[], ttl: number, reason: OpenReason) => Promise<void>;
  /**
   * Told, once an answer's elements are open, which name opened which address
   * for which NIC id through which entries, with the answer's TTL (the flow
   * audit's attribution, see `DnsAttribution`).
   */
  readonly admitted?: (
    nicId: number,
    address: string,
    name: string,
    entries: readonly DomainEntry[],
    ttl: number,
  ) => void;
  /** Longest CNAME chain followed. Default 8. */
  readonly maxChain?: number;
}

/** Question types answered empty for an allowed name: AAAA (no IPv6 here), SVCB (64) and HTTPS (65). */
const EMPTY_TYPES = new Set(['AAAA', 'UNKNOWN_64', 'UNKNOWN_65', 'SVCB', 'HTTPS']);

const BLOCKED = "not on this VM's allow-list";

const reply = (rcode: Reply['rcode'], records: readonly DnsRecord[] = [], blocked?: string): Reply =>
  blocked === undefined ? { rcode, records } : { rcode, records, blocked };

/** Resolves questions for VMs. */
export class DnsResolver {
  constructor(private readonly parts: ResolverParts) {}

  /** The reply to one question (`type` as dns-packet names it, e.g. `A`, `TXT`, `UNKNOWN_65`). */
  async resolve(
    network: string,
    ip: string,
    question: { readonly name: string; readonly type: string; readonly class?: string | undefined },
  ): Promise<Resolution> {
    const refuse = (outcome: Outcome): Resolution => ({ reply: reply('REFUSED', [], BLOCKED), outcome, withheld: 0 });
    if ((question.class ?? 'IN') !== 'IN') return refuse('refused_type');
    const name = normalizeQueryName(question.name);
    if (name === undefined) return refuse('bad_name');
    const client = this.parts.client(network, ip);
    if (client === undefined) return refuse('unknown_client');
    const type = question.type;
    if (type !== 'A' && type !== 'CNAME' && !EMPTY_TYPES.has(type)) return refuse('refused_type');
    const verdict = client.policy.judge(name);
    if (verdict.kind === 'too-long') return refuse('too_long');
    if (verdict.kind === 'denied') {
      return {
        reply: reply(verdict.ancestor ? 'NOERROR' : 'NXDOMAIN', [], BLOCKED),
        outcome: 'blocked',
        withheld: 0,
      };
    }
    if (EMPTY_TYPES.has(type)) return { reply: reply('NOERROR'), outcome: 'nodata', withheld: 0 };
    try {
      return type === 'CNAME' ? await this.alias(network, ip, name) : await this.address(network, ip, name);
    } catch {
      return { reply: reply('SERVFAIL'), outcome: 'servfail', withheld: 0 };
    }
  }

  /** An A question: follow the chain, judge every name in it, open the addresses, answer. */
  private async address(network: string, ip: string, name: string): Promise<Resolution> {
    const chain = await this.chain(network, ip, name);
    if (chain === 'blocked') return cnameBlocked();
    // Judged again now, with the policy as it is after the waits, and nothing awaited from here to the queue.
    const client = this.parts.client(network, ip);
    if (client === undefined) return { reply: reply('REFUSED', [], BLOCKED), outcome: 'unknown_client', withheld: 0 };
    const verdicts = chain.names.map((n) => client.policy.judge(n));
    const first = verdicts[0];
    if (first?.kind !== 'allowed') return { reply: reply('NXDOMAIN', [], BLOCKED), outcome: 'blocked', withheld: 0 };
    if (verdicts.some((v) => v.kind !== 'allowed')) return cnameBlocked();
    const aliases = chain.records.filter((r) => r.type === 'CNAME');
    const addresses = chain.records.filter((r) => r.type === 'A');
    if (addresses.length === 0) {
      const outcome = chain.rcode === 'NXDOMAIN' ? 'nxdomain' : 'nodata';
      return { reply: reply(chain.rcode, aliases), outcome, withheld: 0, cached: chain.cached };
    }
    const kept: DnsRecord[] = [];
    const opens: { address: string; elements: NftElement[]; opening: DomainEntry[] }[] = [];
    for (const record of addresses) {
      const opening: DomainEntry[] = client.policy.opening(first.entries, record.data);
      if (opening.length === 0) continue;
      kept.push(record);
      const elements = opening.flatMap((entry) => dnsOpenElements(client.registration.nicId, record.data, entry));
      opens.push({ address: record.data, elements, opening });
    }
    const withheld = addresses.length - kept.length;
    const ttl = Math.min(...kept.map((r) => r.ttl));
    await Promise.all(
      opens.map(({ address, elements }) => this.parts.open(client.key, elements, ttl, { address, names: chain.names })),
    );
    for (const { address, opening } of opens)
      this.parts.admitted?.(client.registration.nicId, address, name, opening, ttl);
    return {
      reply: reply('NOERROR', [...aliases, ...kept], kept.length === 0 ? BLOCKED : undefined),
      outcome: kept.length === 0 ? 'nodata' : 'answered',
      withheld,
      cached: chain.cached,
    };
  }

  /** A CNAME question: the alias, if its target is allowed too; nothing opened. */
  private async alias(network: string, ip: string, name: string): Promise<Resolution> {
    const lookup = await this.parts.lookup(name, 'CNAME');
    const alias = lookup.records.find((r) => r.type === 'CNAME' && r.name === name);
    const client = this.parts.client(network, ip);
    if (client === undefined) return { reply: reply('REFUSED', [], BLOCKED), outcome: 'unknown_client', withheld: 0 };
    if (alias !== undefined && client.policy.judge(alias.data).kind !== 'allowed') return cnameBlocked();
    return {
      reply: reply(lookup.rcode, alias === undefined ? [] : [alias]),
      outcome: alias === undefined ? 'nodata' : 'answered',
      withheld: 0,
      cached: lookup.cached,
    };
  }

  /**
   * The chain from `name` to its addresses: each CNAME target judged before
   * it is looked up (a name the VM may not resolve is never asked upstream).
   */
  private async chain(
    network: string,
    ip: string,
    name: string,
  ): Promise<{ rcode: 'NOERROR' | 'NXDOMAIN'; names: string[]; records: DnsRecord[]; cached: boolean } | 'blocked'> {
    const names = [name];
    const records: DnsRecord[] = [];
    let lookup = await this.parts.lookup(name, 'A');
    let current = name;
    for (let hop = 0; hop <= (this.parts.maxChain ?? 8); hop += 1) {
      const addresses = lookup.records.filter((r) => r.type === 'A' && r.name === current);
      if (addresses.length > 0)
        return { rcode: 'NOERROR', names, records: [...records, ...addresses], cached: lookup.cached };
      const alias = lookup.records.find((r) => r.type === 'CNAME' && r.name === current);
      if (alias === undefined) return { rcode: lookup.rcode, names, records, cached: lookup.cached };
      const target = alias.data;
      if (names.includes(target)) break;
      if (this.parts.client(network, ip)?.policy.judge(target).kind !== 'allowed') return 'blocked';
      records.push(alias);
      names.push(target);
      current = target;
      if (!lookup.records.some((r) => r.name === target)) lookup = await this.parts.lookup(target, 'A');
    }
    throw new DnsAnswerError(name, `its CNAME chain loops or is longer than ${this.parts.maxChain ?? 8}`);
  }
}

function cnameBlocked(): Resolution {
  return { reply: reply('NXDOMAIN', [], BLOCKED), outcome: 'cname_blocked', withheld: 0 };
}
