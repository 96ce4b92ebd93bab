/**
 * The transactions of the DNS front: adding the destinations an answer opens
 * (`dns_*` sets, each element with its own timeout) and deleting them again.
 * Pure; written as one line of `;`-separated commands, the form a long-lived
 * `nft -i` takes as one transaction (see session.ts).
 */
import { nftCheck } from '../checks.js';
import type { NftElement } from './elements.js';
import { TABLE } from './names.js';

/** One step of a DNS transaction: open an element for `seconds`, or close it. */
export type DnsOp =
  | { readonly kind: 'open'; readonly element: NftElement; readonly seconds: number }
  | { readonly kind: 'close'; readonly element: NftElement };

/** The longest an element may stay open: one week. */
const MAX_SECONDS = 7 * 86_400;

function seconds(value: number): number {
  return nftCheck.integer('seconds', value, 1, MAX_SECONDS);
}

function setName(element: NftElement): string {
  const set = nftCheck.setName('set', element.set);
  if (!set.startsWith('dns_')) throw nftCheck.refuse('set', 'a dns_* set', set);
  return set;
}

/**
 * One transaction (one line) doing `ops` in order. An open sets both the
 * element's timeout and its expiry, so re-adding an open element refreshes it
 * (the kernel keeps the old expiry when only an equal timeout is given). A
 * close is written add-then-delete, so it succeeds whether or not the element
 * is still there (it may have expired). Consecutive ops of one kind on one set
 * share a command. Returns `''` for no ops.
 *
 * @example
 * renderDnsOps([{ kind: 'open', element: { set: 'dns_p16', key: '52:54:00:12:34:56 . 203.0.113.10 . tcp . 443' }, seconds: 90 }]);
 * // 'add element inet ticrypt dns_p16 { 52:54:00:12:34:56 . 203.0.113.10 . tcp . 443 timeout 90s expires 90s }'
 */
export function renderDnsOps(ops: readonly DnsOp[]): string {
  const commands: { kind: DnsOp['kind']; set: string; items: string[]; keys: string[] }[] = [];
  for (const op of ops) {
    const set = setName(op.element);
    const item = op.kind === 'open' ? `${op.element.key} timeout ${seconds(op.seconds)}s expires ${op.seconds}s` : '';
    const last = commands.at(-1);
    const group =
      last !== undefined && last.kind === op.kind && last.set === set
        ? last
        : commands[commands.push({ kind: op.kind, set, items: [], keys: [] }) - 1];
    group?.items.push(item);
    group?.keys.push(op.element.key);
  }
  return commands
    .flatMap(({ kind, set, items, keys }) =>
      kind === 'open'
        ? [`add element ${TABLE} ${set} { ${items.join(', ')} }`]
        : [
            `add element ${TABLE} ${set} { ${keys.map((k) => `${k} timeout 1s`).join(', ')} }`,
            `delete element ${TABLE} ${set} { ${keys.join(', ')} }`,
          ],
    )
    .join('; ');
}
