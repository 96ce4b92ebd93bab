/**
 * What a line of `nft -j monitor` means for `table inet ticrypt`. Pure.
 *
 * Outside its own full rebuilds (during which the backend does not watch),
 * the backend changes the table only by adding and deleting set elements
 * (registrations, and what the DNS front's answers open). So any change to
 * the table itself, its chains or its rules (a `flush ruleset`, a `flush
 * table`, a `delete table`, an `nft -f` that replaces it) is someone else's:
 * the table can no longer be trusted to equal the store.
 */

/** The meaning of one monitor line. */
export type TableEvent =
  | { readonly kind: 'ignore' }
  /** The monitor lost events (netlink buffer overrun): check the table's state. */
  | { readonly kind: 'lost' }
  /** Someone else changed the table, a chain or a rule: `what` says which, in nft words. */
  | { readonly kind: 'foreign'; readonly what: string };

const IGNORE: TableEvent = { kind: 'ignore' };

/** Classify one line of `nft -j monitor` output. */
export function classifyTableEvent(line: string): TableEvent {
  const text = line.trim();
  if (text === '') return IGNORE;
  if (text.startsWith('#')) return /lost/i.test(text) ? { kind: 'lost' } : IGNORE;
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    return IGNORE;
  }
  if (typeof event !== 'object' || event === null) return IGNORE;
  for (const [op, body] of Object.entries(event as Record<string, unknown>)) {
    if (typeof body !== 'object' || body === null) continue;
    for (const [kind, object] of Object.entries(body as Record<string, unknown>)) {
      const o = (object ?? {}) as { family?: unknown; table?: unknown; name?: unknown; chain?: unknown };
      const table = kind === 'table' ? o.name : o.table;
      if (o.family !== 'inet' || table !== 'ticrypt') continue;
      if (kind === 'table') return { kind: 'foreign', what: `${op} table inet ticrypt` };
      if (kind === 'chain') return { kind: 'foreign', what: `${op} chain inet ticrypt ${String(o.name)}` };
      if (kind === 'rule') {
        return { kind: 'foreign', what: `${op} rule in chain inet ticrypt ${String(o.chain)}` };
      }
    }
  }
  return IGNORE;
}
