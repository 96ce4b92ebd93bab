import { TicryptNetError } from './ticrypt-net-error.js';

/** What a failed dnsmasq run left behind. */
export interface DnsmasqProcessFailure {
  /** The command as run, program first (no shell was involved). */
  readonly command: readonly string[];
  /** The exit code, when it exited. */
  readonly exitCode?: number;
  /** The signal that ended it, when one did. */
  readonly signal?: string;
  /** The last lines dnsmasq wrote to stderr. */
  readonly stderr: string;
  /** What was being attempted: `checking`, `starting`, `stopping`. */
  readonly action: string;
}

/**
 * dnsmasq refused a config, failed to start, or would not stop.
 *
 * @example
 * ```
 * dnsmasq failed (exit 1) starting with /run/ticrypt/secure.conf: dnsmasq: bad option at line 3 of ...
 * ```
 */
export class DnsmasqProcessError extends TicryptNetError {
  readonly command: readonly string[];
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stderr: string;
  readonly action: string;

  constructor(failure: DnsmasqProcessFailure, what: string, options?: ErrorOptions) {
    super('E_DNSMASQ_PROCESS', formatFailure(failure, what), options);
    this.name = 'DnsmasqProcessError';
    this.command = failure.command;
    this.exitCode = failure.exitCode;
    this.signal = failure.signal;
    this.stderr = failure.stderr;
    this.action = failure.action;
  }
}

function formatFailure(failure: DnsmasqProcessFailure, what: string): string {
  const how =
    failure.exitCode !== undefined
      ? `exit ${failure.exitCode}`
      : failure.signal !== undefined
        ? `signal ${failure.signal}`
        : 'no exit';
  const firstLine = failure.stderr.split('\n').find((line) => line.trim() !== '') ?? '(no output)';
  return `dnsmasq failed (${how}) ${failure.action} ${what}: ${firstLine}`;
}
