import { ProgramError } from './program-error.js';

/** What a failed dnsmasq run left behind. */
export interface DnsmasqProcessFailure {
  /** The command as run, program first (no shell was involved). */
  readonly command: readonly string[];
  /** The exit code, when it exited. */
  readonly exitCode?: number | undefined;
  /** The signal that ended it, when one did. */
  readonly signal?: string | undefined;
  /** The last lines dnsmasq wrote to stderr. */
  readonly stderr: string;
  /** What was being attempted: `checking`, `starting`, `stopping`. */
  readonly action: string;
  /** The network namespace it ran in, if any. */
  readonly netns?: string | undefined;
}

/**
 * dnsmasq refused a config, failed to start, or would not stop.
 *
 * @example
 * ```
 * dnsmasq failed (exit 1) starting with /run/ticrypt/secure.conf: dnsmasq: bad option at line 3 of ...
 * ```
 */
export class DnsmasqProcessError extends ProgramError {
  /** What was being attempted: `checking`, `starting`, `reloading`, `preparing`. */
  readonly action: string;

  /** @param what what it was done on (`with /run/x/secure.conf`, a file, a pid); may be empty. */
  constructor(failure: DnsmasqProcessFailure, what: string, options?: ErrorOptions) {
    const { action, ...rest } = failure;
    super('E_DNSMASQ_PROCESS', rest, what === '' ? action : `${action} ${what}`, options);
    this.name = 'DnsmasqProcessError';
    this.action = action;
  }
}
