/**
 * The flow-audit fragments of `table inet ticrypt` (rendered only with
 * {@link AuditRuleOptions}): the admission bits the accepting rules OR into
 * `ct mark`, the `ct mark` lookups masked to the NIC id, and the refused-flow
 * rules: each refusal of an audited network is counted (`audit_seen_*`),
 * sent to NFLOG within a rate limit and counted again (`audit_logged_*`), so
 * seen minus logged is exactly what the limit suppressed.
 * Pure: text from data.
 */
import { nftCheck } from '../checks.js';
import type { Network, Site } from '../../site/model.js';
import { admissionBits, markText, NIC_ID_MASK, type Admission } from './marks.js';
import type { RefusalReason } from '../audit/record.js';

/** Options of the audit fragments: the NFLOG group refusals go to and their rate limit. */
export interface AuditRuleOptions {
  /** The NFLOG group (1-65535) ulogd listens on for refusals. */
  readonly nflogGroup: number;
  /** Refusal records per second, per reason and network (default 50); bursts of twice that. */
  readonly refusedPerSecond?: number;
}

/** The networks whose flows are on record. */
export function auditedNetworks(site: Site): Network[] {
  return site.networks.filter((n) => n.audit === 'records' && n.egress === 'allow-list');
}

/** `ct mark`, or `ct mark & 0x00ffffff` when audit bits may sit above the NIC id. */
export function ctNicId(audit: AuditRuleOptions | undefined): string {
  return audit === undefined ? 'ct mark' : `ct mark & ${markText(NIC_ID_MASK)}`;
}

/** ` ct mark set ct mark | 0x81000000` for an accepting rule, or nothing without audit. */
export function admitted(site: Site, audit: AuditRuleOptions | undefined, kind: Admission): string {
  if (audit === undefined || auditedNetworks(site).length === 0) return '';
  return ` ct mark set ct mark | ${markText(admissionBits(kind))}`;
}

/** The NFLOG prefix of a refusal: `ticrypt-audit <reason> <network>`. */
export const REFUSAL_PREFIX = 'ticrypt-audit';

/** The two counters of one reason on one network. */
export function refusalCounters(reason: RefusalReason, network: string): { seen: string; logged: string } {
  const id = `${reason.replace('-', '_')}_${network}`;
  return { seen: `audit_seen_${id}`, logged: `audit_logged_${id}` };
}

/** Where each reason is refused: the source chains (spoofed, unregistered), `from_vm`, `allow_egress`. */
export const REFUSAL_REASONS: readonly RefusalReason[] = ['spoofed', 'unregistered', 'cross-network', 'not-allowed'];

/** Every audit counter of the table (none without audit). */
export function auditCounterNames(site: Site, audit: AuditRuleOptions | undefined): string[] {
  if (audit === undefined) return [];
  return auditedNetworks(site).flatMap((n) =>
    REFUSAL_REASONS.flatMap((reason) => Object.values(refusalCounters(reason, n.name))),
  );
}

/**
 * The statements that put one refusal on record, to follow the refused
 * packet's match in a rule of its own (before the rule that drops it):
 * `counter name audit_seen_… limit rate 50/second burst 100 packets log prefix "…" group 2 counter name audit_logged_…`.
 */
export function refusalStatements(audit: AuditRuleOptions, reason: RefusalReason, network: Network): string {
  const group = nftCheck.port('audit.nflogGroup', audit.nflogGroup);
  const rate = audit.refusedPerSecond ?? 50;
  if (!Number.isInteger(rate) || rate < 1 || rate > 100_000) {
    throw nftCheck.refuse('audit.refusedPerSecond', 'an integer 1-100000', rate);
  }
  const counters = refusalCounters(reason, network.name);
  return `counter name ${counters.seen} limit rate ${rate}/second burst ${2 * rate} packets log prefix "${REFUSAL_PREFIX} ${reason} ${network.name}" group ${group} counter name ${counters.logged}`;
}

/**
 * The refusal rules of one reason for a shared chain: one per audited
 * network, matched by its gateway interface (`iifname "…" <match> <statements>`).
 */
export function refusalRules(
  site: Site,
  audit: AuditRuleOptions | undefined,
  reason: RefusalReason,
  match: string,
): string[] {
  if (audit === undefined) return [];
  return auditedNetworks(site).map(
    (n) =>
      `iifname "${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}" ${match}${match === '' ? '' : ' '}${refusalStatements(audit, reason, n)}`,
  );
}
