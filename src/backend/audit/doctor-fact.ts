/**
 * What `doctor --role backend` checks of the flow audit: the logger runs
 * (its pid file names a live ulogd), the kernel dropped no conntrack
 * event on its sockets, and the service's loss ledger (loss-ledger.ts:
 * totals kept across its restarts) holds no loss. Gathered from the audit
 * directory (only when the service was run with `--audit`: its config is
 * there); the check is pure.
 */
import { access } from 'node:fs/promises';
import { fail, ok, type CheckResult } from '../../host/doctor/result.js';
import { LOSS_KINDS, loadLedger, type LossLedger } from './loss-ledger.js';
import { netlinkDrops } from './netlink-drops.js';
import { auditFiles } from './service.js';
import { runningUlogd } from './ulogd-process.js';

/** The logger as doctor found it. */
export interface AuditFact {
  readonly pidFile: string;
  /** ulogd's pid while it runs. */
  readonly pid?: number;
  /** Netlink messages (batches of refusals) the kernel dropped on its NFLOG socket since it started (lost). */
  readonly netlinkDrops: number;
  /** Conntrack end events its event socket overran since it started (kept and resent by the kernel). */
  readonly overruns: number;
  /** The service's loss ledger (absent before the service first ran). */
  readonly ledger?: LossLedger;
}

/** The audit fact of `dir`, or `undefined` when the audit was never configured there. */
export async function auditFactOf(dir: string): Promise<AuditFact | undefined> {
  const files = auditFiles(dir);
  if (
    !(await access(files.conf).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  const pid = await runningUlogd(files.pid);
  const hasLedger = await access(files.ledger).then(
    () => true,
    () => false,
  );
  const drops = pid === undefined ? undefined : await netlinkDrops(pid);
  const sum = (map: Map<number, number> | undefined) => [...(map?.values() ?? [])].reduce((a, b) => a + b, 0);
  return {
    pidFile: files.pid,
    ...(pid === undefined ? {} : { pid }),
    netlinkDrops: sum(drops?.log),
    overruns: sum(drops?.events),
    ...(hasLedger ? { ledger: await loadLedger(files.ledger) } : {}),
  };
}

/** What the ledger counts as lost, in words; `undefined` when nothing. */
function lossText(ledger: LossLedger): string | undefined {
  const parts: string[] = [];
  const lost = ledger.lost;
  if (lost['logger-down'] > 0)
    parts.push(
      `${lost['logger-down']} logger outage(s), ${ledger.loggerDownSeconds.toFixed(1)} s in all (audited flows that ended meanwhile have no record)`,
    );
  if (lost['nflog-gap'] > 0) parts.push(`${lost['nflog-gap']} refusals missing from the NFLOG sequence`);
  if (lost.malformed > 0) parts.push(`${lost.malformed} logger lines not JSON`);
  return parts.length === 0 ? undefined : parts.join('; ');
}

/**
 * `audit.logger` (ulogd runs), `audit.netlink-drops` (nothing lost on its sockets now) and, once the service
 * ran, `audit.losses` (its ledger: every loss since the ledger began, across service restarts).
 */
export function checkAudit(fact: AuditFact): CheckResult[] {
  const losses = fact.ledger === undefined ? undefined : lossText(fact.ledger);
  const ledgerResults: CheckResult[] =
    fact.ledger === undefined
      ? []
      : [
          losses === undefined
            ? ok(
                'audit.losses',
                'ticrypt-net',
                `none (${LOSS_KINDS.join(', ')}; ${fact.ledger.overruns} conntrack event overruns, resent)`,
              )
            : fail(
                'audit.losses',
                'ticrypt-net',
                `audit records lost: ${losses}`,
                'see ticrypt_audit_lost_total on /metrics; keep the logger running (ticrypt-net-ulogd.service) and its buffers large',
              ),
        ];
  return [
    fact.pid !== undefined
      ? ok('audit.logger', 'ulogd', `pid ${fact.pid}`)
      : fail(
          'audit.logger',
          'ulogd',
          `no running ulogd in ${fact.pidFile}: flows that end and refusals are lost until one runs`,
          'start ticrypt-net-ulogd.service (or restart the backend service with --audit, which starts it)',
        ),
    fact.netlinkDrops === 0
      ? ok(
          'audit.netlink-drops',
          'ulogd',
          fact.overruns === 0
            ? 'no event dropped'
            : `no event dropped (${fact.overruns} conntrack event overruns, resent by the kernel)`,
        )
      : fail(
          'audit.netlink-drops',
          'ulogd',
          `the kernel dropped ${fact.netlinkDrops} batches of refusals on the logger's NFLOG socket: they have no record (ticrypt_audit_lost_total{how="nflog-gap"} counts them)`,
          'raise netlink_socket_buffer_size in the audit config, or give the logger a core of its own',
        ),
    ...ledgerResults,
  ];
}
