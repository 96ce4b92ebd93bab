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
  /** Messages the kernel dropped on its netlink sockets (conntrack events, refusals) since it started. */
  readonly netlinkDrops: number;
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
  const drops = pid === undefined ? 0 : [...(await netlinkDrops(pid)).values()].reduce((a, b) => a + b, 0);
  return { pidFile: files.pid, ...(pid === undefined ? {} : { pid }), netlinkDrops: drops };
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
      ? ok('audit.netlink-drops', 'ulogd', 'no event dropped')
      : fail(
          'audit.netlink-drops',
          'ulogd',
          `the kernel dropped ${fact.netlinkDrops} messages on the logger's sockets: those flows have no record`,
          'raise netlink_socket_buffer_size in the audit config, or give the logger a core of its own',
        ),
  ];
}
