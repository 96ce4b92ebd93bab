/**
 * One VM's DNS policy, compiled from its allow-list: which names it may
 * resolve, with which entries, and which answered addresses those entries
 * may open. Pure.
 */
import type { Ipv4Subnet } from '../../site/address.js';
import type { AllowEntry } from '../../protocol/api.js';
import { wildcardBase } from './names.js';
import { inRanges, isSpecialUse, parseRange } from './special.js';

/** A domain allow entry. */
export type DomainEntry = Extract<AllowEntry, { type: 'domain' }>;

/** How much a wildcard may match (a tunnel through a wildcard fills long labels; real host names do not). */
export interface WildcardLimits {
  /** Longest label a wildcard may match. Default 40. */
  readonly label: number;
  /** Most labels a wildcard may match. Default 4. */
  readonly depth: number;
}

/** The default {@link WildcardLimits}. */
export const DEFAULT_WILDCARD_LIMITS: WildcardLimits = { label: 40, depth: 4 };

/** What a policy says about a name. */
export type NameVerdict =
  /** Named by these entries (exactly, or by a wildcard within its limits). */
  | { readonly kind: 'allowed'; readonly entries: readonly DomainEntry[] }
  /** Only a wildcard names it, and the part it matches is longer than the limits. */
  | { readonly kind: 'too-long' }
  /** Not named; `ancestor`: a name the policy does allow lies below it. */
  | { readonly kind: 'denied'; readonly ancestor: boolean };

/**
 * A VM's names, from its allow entries: exact names, and `*.base` wildcards
 * that match every name below `base` (not `base` itself).
 *
 * @example
 * const policy = NamePolicy.of([{ type: 'domain', domain: '*.example.org', protocol: 'tcp' }]);
 * policy.judge('www.example.org').kind; // 'allowed'
 * policy.judge('example.org');          // { kind: 'denied', ancestor: true }
 */
export class NamePolicy {
  private readonly exact = new Map<string, DomainEntry[]>();
  private readonly wildcards = new Map<string, DomainEntry[]>();
  private readonly ancestors = new Set<string>();
  private readonly specialOf = new Map<DomainEntry, readonly Ipv4Subnet[]>();

  private constructor(private readonly limits: WildcardLimits) {}

  /** Compile the domain entries among `entries` (address entries are the firewall's alone). */
  static of(entries: readonly AllowEntry[], limits: WildcardLimits = DEFAULT_WILDCARD_LIMITS): NamePolicy {
    const policy = new NamePolicy(limits);
    for (const entry of entries) {
      if (entry.type !== 'domain') continue;
      policy.specialOf.set(
        entry,
        (entry.specialRanges ?? []).flatMap((text) => parseRange(text) ?? []),
      );
      const base = wildcardBase(entry.domain);
      const into = base === undefined ? policy.exact : policy.wildcards;
      const key = base ?? entry.domain;
      into.set(key, [...(into.get(key) ?? []), entry]);
      const labels = key.split('.');
      for (let i = base === undefined ? 1 : 0; i < labels.length; i += 1)
        policy.ancestors.add(labels.slice(i).join('.'));
    }
    return policy;
  }

  /** Whether the policy names any domain at all. */
  get empty(): boolean {
    return this.exact.size === 0 && this.wildcards.size === 0;
  }

  /** Judge a query name (normalized: lower case, no trailing dot). */
  judge(name: string): NameVerdict {
    const found = [...(this.exact.get(name) ?? [])];
    let tooLong = false;
    const labels = name.split('.');
    for (let i = 1; i < labels.length; i += 1) {
      const matched = this.wildcards.get(labels.slice(i).join('.'));
      if (matched === undefined) continue;
      const part = labels.slice(0, i);
      if (part.length <= this.limits.depth && part.every((label) => label.length <= this.limits.label))
        found.push(...matched);
      else tooLong = true;
    }
    if (found.length > 0) return { kind: 'allowed', entries: [...new Set(found)] };
    if (tooLong) return { kind: 'too-long' };
    return { kind: 'denied', ancestor: this.ancestors.has(name) };
  }

  /**
   * Of the entries that allowed a name, those that open `address` when an
   * answer names it: all of them for an ordinary address; for a special-use
   * one, only those whose `specialRanges` contain it.
   */
  opening(entries: readonly DomainEntry[], address: string): DomainEntry[] {
    if (!isSpecialUse(address)) return [...entries];
    return entries.filter((entry) => inRanges(this.specialOf.get(entry) ?? [], address));
  }
}
