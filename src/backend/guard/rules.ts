/**
 * The fail-closed policy routing rules, as data: pure functions from the site
 * to the rules the backend needs, their `ip rule` argv, and what is missing
 * from what `ip -j rule show` lists.
 *
 * `table inet ticrypt` sets the site's fail-closed mark bit on every packet it
 * lets in from a VM network and on every packet from the uplink. These rules
 * blackhole forwarded traffic that lacks the bit: from each gateway interface
 * (IPv4 and IPv6), and from the uplink to each VM subnet. Local traffic (DHCP,
 * DNS, ICMP to the gateway) is found in the `local` table first (rule 0) and
 * is not affected. So whenever the table is absent (deleted, flushed, never
 * applied), nothing forwards to or from a VM network, with no window.
 */
import { nftCheck } from '../checks.js';
import { intToIpv4 } from '../../site/address.js';
import type { Site } from '../../site/model.js';
import { isFailClosedMark } from '../../site/primitives.js';

/** The priority of the first rule: after `local` (0), well before `main` (32766) and common VPN rules (5000+). */
export const FIRST_RULE_PREF = 100;

/** One `ip rule ... fwmark 0/BIT blackhole`. */
export interface FailClosedRule {
  readonly family: 4 | 6;
  readonly pref: number;
  /** The interface packets arrive on. */
  readonly iif: string;
  /** Only packets to this subnet (`192.168.128.0/17`); absent: every destination. */
  readonly to?: string;
  /** The fail-closed bit: the rule matches packets whose mark has it clear. */
  readonly mark: number;
}

/** Every rule the site needs, in priority order from {@link FIRST_RULE_PREF}. */
export function failClosedRules(site: Site): FailClosedRule[] {
  const mark = site.backend.failClosedMark;
  if (!isFailClosedMark(mark)) throw new Error(`backend.failClosedMark: expected one bit of 24-31, found ${mark}`);
  const uplink = nftCheck.interfaceName('backend.uplink', site.backend.uplink);
  const rules: Omit<FailClosedRule, 'pref'>[] = [
    ...site.networks.map((n) => ({
      family: 4 as const,
      iif: nftCheck.interfaceName('gatewayInterface', n.gatewayInterface),
      mark,
    })),
    ...site.networks.map((n) => {
      const subnet = nftCheck.destination(`networks.${n.name}.subnet`, n.subnet);
      return { family: 4 as const, iif: uplink, to: `${intToIpv4(subnet.first)}/${subnet.prefix}`, mark };
    }),
    ...site.networks.map((n) => ({
      family: 6 as const,
      iif: nftCheck.interfaceName('gatewayInterface', n.gatewayInterface),
      mark,
    })),
  ];
  return rules.map((rule, i) => ({
    ...rule,
    pref: FIRST_RULE_PREF + (rule.family === 6 ? i - site.networks.length * 2 : i),
  }));
}

/** The argv after `ip` that adds (or deletes) a rule: `-4 rule add pref 100 iif bond0.1081 fwmark 0/0x10000000 blackhole`. */
export function ruleArgs(rule: FailClosedRule, verb: 'add' | 'del' = 'add'): string[] {
  return [
    `-${rule.family}`,
    'rule',
    verb,
    'pref',
    String(rule.pref),
    'iif',
    rule.iif,
    ...(rule.to === undefined ? [] : ['to', rule.to]),
    'fwmark',
    `0/0x${rule.mark.toString(16)}`,
    'blackhole',
  ];
}

/** A rule as `ip -j rule show` lists it (the fields these rules use). */
interface ListedRule {
  readonly priority?: number;
  readonly iif?: string;
  readonly dst?: string;
  readonly dstlen?: number;
  readonly fwmark?: string;
  readonly fwmask?: string;
  readonly action?: string;
}

/** Whether a listed rule is `rule` (same priority, interface, destination, mark and action). */
function matches(listed: ListedRule, rule: FailClosedRule): boolean {
  const to = listed.dst === undefined ? undefined : `${listed.dst}/${listed.dstlen ?? 32}`;
  return (
    listed.priority === rule.pref &&
    listed.iif === rule.iif &&
    to === rule.to &&
    Number(listed.fwmark ?? 'NaN') === 0 &&
    Number(listed.fwmask ?? 'NaN') === rule.mark &&
    listed.action === 'blackhole'
  );
}

/** The rules of `wanted` (one family) that `ip -j rule show` output `json` lacks; all of them when it is unreadable. */
export function missingRules(wanted: readonly FailClosedRule[], json: string): FailClosedRule[] {
  let listed: ListedRule[];
  try {
    const parsed: unknown = JSON.parse(json);
    listed = Array.isArray(parsed) ? (parsed as ListedRule[]) : [];
  } catch {
    listed = [];
  }
  return wanted.filter((rule) => !listed.some((l) => matches(l, rule)));
}

/** A rule in `ip rule` words, for messages: `pref 100 iif bond0.1081 fwmark 0/0x10000000 blackhole (IPv4)`. */
export function describeRule(rule: FailClosedRule): string {
  return `${ruleArgs(rule).slice(3).join(' ')} (IPv${rule.family})`;
}
