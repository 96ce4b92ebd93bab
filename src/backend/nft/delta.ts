/**
 * Incremental transactions: one `nft -f` script per register, deregister or
 * allow-list change, made only of hash-set element adds and deletes (plus,
 * when the set of allowed domains changes, that domain's sets and the small
 * `domains` chain). Its size depends on the change, never on how many VMs are
 * registered, and it never lists or rewrites the table.
 */
import { nftCheck } from '../checks.js';
import type { Site } from '../../site/model.js';
import type { AllowEntry, Registration } from '../../protocol/api.js';
import {
  dedupe,
  elementId,
  groupBySet,
  identityElements,
  nicElements,
  nicIdText,
  type NftElement,
} from './elements.js';
import { domainMemberSetName, domainSetName, DOMAINS_CHAIN, REVOKED_SET, SSH_FORWARDS_MAP, TABLE } from './names.js';
import { domainRules } from './ruleset.js';
import { keyType, PORT_SHAPES } from './shapes.js';
import type { RulesetOptions, SshForward } from './types.js';

/** A registered NIC and the allow entries of its VM. */
export interface NicState {
  readonly registration: Registration;
  readonly entries: readonly AllowEntry[];
}

/** What a change needs besides the NICs it touches. */
export interface DeltaContext {
  readonly site: Site;
  /**
   * The distinct allowed domains of all registered VMs before and after the
   * change (see `distinctDomains`): a domain's sets and rules exist while
   * some registered VM names it.
   */
  readonly domains: { readonly before: readonly string[]; readonly after: readonly string[] };
  readonly options?: RulesetOptions;
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

function domainSetCommands(domain: string, timeout: string): string[] {
  return [
    `add set ${TABLE} ${domainSetName(domain)} { type ipv4_addr; flags timeout; timeout ${timeout}; }`,
    ...PORT_SHAPES.map(
      (port) => `add set ${TABLE} ${domainMemberSetName(domain, port)} { type ${keyType({ ipBits: 0, port })}; }`,
    ),
  ];
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
  const elements = (nics: readonly NicState[]) =>
    dedupe(nics.flatMap((n) => nicElements(ctx.site, n.registration, n.entries)));
  const old = elements(before);
  const next = elements(after);
  const oldKeys = new Set(old.map(elementId));
  const nextKeys = new Set(next.map(elementId));
  const added = next.filter((e) => !oldKeys.has(elementId(e)));
  const removed = old.filter((e) => !nextKeys.has(elementId(e)));

  const timeout = nftCheck.timeout('domainTimeout', ctx.options?.domainTimeout ?? '1d');
  const domainsBefore = new Set(ctx.domains.before);
  const domainsAfter = new Set(ctx.domains.after);
  const newDomains = [...domainsAfter].filter((d) => !domainsBefore.has(d));
  const goneDomains = [...domainsBefore].filter((d) => !domainsAfter.has(d));
  const domainsChanged = newDomains.length > 0 || goneDomains.length > 0;

  // Deletes before adds: a map key whose value changes is deleted, then added with its new value.
  const commands = [
    ...newDomains.flatMap((d) => domainSetCommands(d, timeout)),
    ...(ctx.idempotent === true ? elementCommands('add', removed) : []),
    ...elementCommands('delete', removed),
    ...elementCommands('add', added),
    ...(domainsChanged
      ? [
          `flush chain ${TABLE} ${DOMAINS_CHAIN}`,
          ...domainRules([...domainsAfter].sort()).map((rule) => `add rule ${TABLE} ${DOMAINS_CHAIN} ${rule}`),
        ]
      : []),
    ...goneDomains.flatMap((d) => [
      ...domainSetCommands(d, timeout),
      `delete set ${TABLE} ${domainSetName(d)}`,
      ...PORT_SHAPES.map((port) => `delete set ${TABLE} ${domainMemberSetName(d, port)}`),
    ]),
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
 * for a batch of NICs cut off by {@link renderRevoke}. The site's set of
 * domains must not have changed since (the caller flushes before such a change).
 */
export function renderCleanup(site: Site, nics: readonly NicState[], options?: RulesetOptions): string {
  const ids = revocableIds(site, nics);
  const deletions = renderChange(
    { site, domains: { before: [], after: [] }, ...(options ? { options } : {}) },
    nics,
    [],
  );
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

/**
 * Add, replace or remove the SSH forward on one backend port (backend port →
 * VM port 22): `before` is what the store held, `after` what it holds now.
 * A map element cannot be re-added with another value, so `before` must be
 * given whenever a forward existed.
 */
export function renderSshForwardChange(before: SshForward | undefined, after: SshForward | undefined): string {
  const element = (f: SshForward) =>
    `${nftCheck.port('sshForward.port', f.port)} : ${nftCheck.ipv4('sshForward.ip', f.ip)}`;
  const commands: string[] = [];
  if (before !== undefined) {
    commands.push(`add element ${TABLE} ${SSH_FORWARDS_MAP} { ${element(before)} }`);
    commands.push(`delete element ${TABLE} ${SSH_FORWARDS_MAP} { ${nftCheck.port('sshForward.port', before.port)} }`);
  }
  if (after !== undefined) commands.push(`add element ${TABLE} ${SSH_FORWARDS_MAP} { ${element(after)} }`);
  return commands.length === 0 ? '' : `${commands.join('\n')}\n`;
}
