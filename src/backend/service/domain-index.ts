import type { AllowEntry } from '../../protocol/api.js';

/** The distinct domain names among a list of allow entries. */
export function domainsOf(entries: readonly AllowEntry[]): string[] {
  return [...new Set(entries.flatMap((e) => (e.type === 'domain' ? [e.domain] : [])))];
}

/**
 * Which domains some registered VM's allow-list names, with a count per
 * domain, so that a change learns in O(its own entries) whether a domain
 * appears or disappears site-wide (its nft sets and dnsmasq lines follow).
 */
export class DomainIndex {
  private counts = new Map<string, number>();

  /** The domains named now, sorted. */
  list(): string[] {
    return [...this.counts.keys()].sort();
  }

  /**
   * The domains after a VM with `removed` entries stops counting and one with
   * `added` entries starts: the new index, not yet adopted (see {@link adopt}).
   */
  with(removed: readonly AllowEntry[], added: readonly AllowEntry[]): DomainIndex {
    const next = new DomainIndex();
    next.counts = new Map(this.counts);
    for (const domain of domainsOf(removed)) {
      const count = (next.counts.get(domain) ?? 0) - 1;
      if (count > 0) next.counts.set(domain, count);
      else next.counts.delete(domain);
    }
    for (const domain of domainsOf(added)) next.counts.set(domain, (next.counts.get(domain) ?? 0) + 1);
    return next;
  }

  /** Take over another index's counts (after its change was committed). */
  adopt(other: DomainIndex): void {
    this.counts = other.counts;
  }
}
