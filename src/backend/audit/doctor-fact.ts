/**
 * What `doctor --role backend` checks of the flow audit: the logger runs
 * (its pid file names a live ulogd), and the kernel dropped no conntrack
 * event on its sockets. Gathered from the audit directory (only when the
 * service was run with `--audit`: its config is there); the check is pure.
 */
import { access } from 'node:fs/promises';
import { fail, ok, type CheckResult } from '../../host/doctor/result.js';
import { netlinkDrops } from './netlink-drops.js';
import { auditFiles } from './service.js';
import { runningUlogd } from './ulogd-process.js';

/** The logger as doctor found it. */
export interface AuditFact {
  readonly pidFile: string;
  /** ulogd's pid while it runs. */
  readonly pid?: number;
  /** Refusals the kernel dropped on its NFLOG socket since it started (lost). */
  readonly netlinkDrops: number;
  /** Conntrack end events its event socket overran since it started (kept and resent by the kernel). */
  readonly overruns: number;
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
  const drops = pid === undefined ? undefined : await netlinkDrops(pid);
  const sum = (map: Map<number, number> | undefined) => [...(map?.values() ?? [])].reduce((a, b) => a + b, 0);
  return {
    pidFile: files.pid,
    ...(pid === undefined ? {} : { pid }),
    netlinkDrops: sum(drops?.log),
    overruns: sum(drops?.events),
  };
}

/** `audit.logger` (ulogd runs) and `audit.netlink-drops` (nothing lost on its sockets). */
export function checkAudit(fact: AuditFact): CheckResult[] {
  return [
    fact.pid !== undefined
      ? ok('audit.logger', 'ulogd', `pid ${fact.pid}`)
      : fail(
          'audit.logger',
          'ulogd',
          `no running ulogd in ${fact.pidFile}: flow end events wait, refusals are lost`,
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
          `the kernel dropped ${fact.netlinkDrops} refusals on the logger's NFLOG socket: they have no record`,
          'raise netlink_socket_buffer_size in the audit config, or give the logger a core of its own',
        ),
  ];
}
