/**
 * Incremental transactions: one `nft -f` script per register, deregister or
 * allow-list change, made only of hash-set element adds and deletes. Its size
 * depends on the change, never on how many VMs are registered, and it never
 * lists or rewrites the table. (What the DNS front opens per answer goes
 * through its own transactions: see dns-opens.ts.)
 */
import type { Site } from '../../site/model.js';
import type { AllowEntry, Registration } from '../../protocol/api.js';
import { dedupe, elementId, groupBySet, identityElements, nicIdText, type NftElement } from './elements.js';
import { REVOKED_SET, TABLE } from './names.js';
import { nicAccessElements, type NicSsh } from './ssh.js';

/** A registered NIC, the allow entries of its VM, and its SSH access (absent: none). */
export interface NicState {
  readonly registration: Registration;
  readonly entries: readonly AllowEntry[];
  readonly ssh?: NicSsh;
}

/** What a change needs besides the NICs it touches. */
export interface DeltaContext {
  readonly site: Site;
  /**
   * Write each delete as add-then-delete, so it succeeds whether or not the
   * element is there (a kernel that drifted from the store still converges),
   * at about twice the cost. Default `false`: plain deletes, which fail the
   * whole transaction (changing nothing) if an element is missing;
   * `NftGateway` then retries with `idempotent: true`.
   */
  readonly idempotent?: boolean;
}

function elementCommands(verb: 'add' | 'delete', elements: readonly NftElement[]): string[] {
  return [...groupBySet(elements, verb === 'add')].map(
    ([set, keys]) => `${verb} element ${TABLE} ${set} { ${keys.join(', ')} }`,
  );
}

/**
 * The transaction that takes the kernel from the NICs `before` to the NICs
 * `after`: the element difference, added and deleted (see
 * {@link DeltaContext.idempotent}). Returns `''` when nothing changes.
 *
 * @example
 * renderChange(ctx, [], [{ registration, entries }]); // register
 * renderChange(ctx, [{ registration, entries }], []); // deregister
 */
export function renderChange(ctx: DeltaContext, before: readonly NicState[], after: readonly NicState[]): string {
  const elements = (nics: readonly NicState[]) => dedupe(nics.flatMap((n) => nicAccessElements(ctx.site, n)));
  const old = elements(before);
  const next = elements(after);
  const oldKeys = new Set(old.map(elementId));
  const nextKeys = new Set(next.map(elementId));
  const added = next.filter((e) => !oldKeys.has(elementId(e)));
  const removed = old.filter((e) => !nextKeys.has(elementId(e)));

  // Deletes before adds: a map key whose value changes is deleted, then added with its new value.
  const commands = [
    ...(ctx.idempotent === true ? elementCommands('add', removed) : []),
    ...elementCommands('delete', removed),
    ...elementCommands('add', added),
  ];
  return commands.length === 0 ? '' : `${commands.join('\n')}\n`;
}

/** The ids of the NICs that have firewall elements (those on allow-list networks), as `revoked` elements. */
export function revocableIds(site: Site, nics: readonly NicState[]): string[] {
  return nics.flatMap((n) =>
    identityElements(site, n.registration).length === 0 ? [] : [nicIdText(n.registration.nicId)],
  );
}

/**
 * Cut NICs off at once: their ids added to `revoked`, which every packet
 * from an allow-list network (and every packet of a flow to one) is checked
 * against first. Adding costs a few ms; the deletions follow later in a batch
 * ({@link renderCleanup}). Returns `''` when none of the NICs has firewall elements.
 */
export function renderRevoke(site: Site, nics: readonly NicState[]): string {
  const ids = revocableIds(site, nics);
  return ids.length === 0 ? '' : `add element ${TABLE} ${REVOKED_SET} { ${ids.join(', ')} }\n`;
}

/**
 * Delete revoked NICs' elements and their `revoked` ids, in one transaction,
 * for a batch of NICs cut off by {@link renderRevoke}.
 */
export function renderCleanup(site: Site, nics: readonly NicState[]): string {
  const ids = revocableIds(site, nics);
  const deletions = renderChange({ site }, nics, []);
  return `${deletions}${ids.length === 0 ? '' : `delete element ${TABLE} ${REVOKED_SET} { ${ids.join(', ')} }\n`}`;
}

/** One NIC registered (or re-registered): its elements added. */
export function renderRegister(ctx: DeltaContext, nic: NicState): string {
  return renderChange(ctx, [], [nic]);
}

/** One NIC deregistered: its elements deleted. */
export function renderDeregister(ctx: DeltaContext, nic: NicState): string {
  return renderChange(ctx, [nic], []);
}

/** A VM's allow-list changed from `before` to `after`, for each of its registered NICs. */
export function renderAllowListChange(
  ctx: DeltaContext,
  registrations: readonly Registration[],
  before: readonly AllowEntry[],
  after: readonly AllowEntry[],
): string {
  return renderChange(
    ctx,
    registrations.map((registration) => ({ registration, entries: before })),
    registrations.map((registration) => ({ registration, entries: after })),
  );
}
