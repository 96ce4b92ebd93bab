/** How a doctor check came out. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One check's verdict: what was checked, what was found, and the fix when it is not OK. */
export interface CheckResult {
  /** Stable id of the check, e.g. `bridge.present`. */
  readonly id: string;
  /** What it was checked on, e.g. `br-secure`. */
  readonly subject: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly message: string;
  /** What to do (absent when OK). */
  readonly fix?: string;
}

/** An OK result. */
export function ok(id: string, subject: string, message: string): CheckResult {
  return { id, subject, status: 'ok', message };
}

/** A WARN result with its fix. */
export function warn(id: string, subject: string, message: string, fix: string): CheckResult {
  return { id, subject, status: 'warn', message, fix };
}

/** A FAIL result with its fix. */
export function fail(id: string, subject: string, message: string, fix: string): CheckResult {
  return { id, subject, status: 'fail', message, fix };
}

/** The CLI's exit code for results: 1 when any check failed, else 0 (warnings allowed). */
export function doctorExitCode(results: readonly CheckResult[]): 0 | 1 {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

/** One line per result: `FAIL bridge.present br-secure: missing. Fix: ...`. */
export function formatResults(results: readonly CheckResult[]): string {
  return results
    .map(
      (r) =>
        `${r.status.toUpperCase().padEnd(4)} ${r.id} ${r.subject}: ${r.message}${r.fix === undefined ? '' : `\n     fix: ${r.fix}`}\n`,
    )
    .join('');
}
