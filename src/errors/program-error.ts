import { TicryptNetError } from './ticrypt-net-error.js';

/** What a failed program run left behind. */
export interface ProgramFailure {
  /** The program and its arguments, as the program saw them (no shell was involved). */
  readonly command: readonly string[];
  /** The network namespace it ran in (`ip netns exec`), if any. */
  readonly netns?: string | undefined;
  /** Its exit code, when it exited. */
  readonly exitCode?: number | undefined;
  /** The signal that ended it, when one did (a time-out kills it). */
  readonly signal?: string | undefined;
  /** A long-lived program refused one request and runs on (`nft -i`): it has no exit code to give. */
  readonly refused?: boolean | undefined;
  /** What it wrote to stderr (or why it could not be started). */
  readonly stderr: string;
}

/**
 * A program ticrypt-net ran failed. The base of each program's own error
 * ({@link NftError}, {@link ConntrackError}, {@link DnsmasqProcessError},
 * {@link HostCommandError} and its ovs-vsctl, ip, nmcli and virsh kinds): each
 * keeps the whole result, and every message is built here, in one order:
 *
 * ```
 * <program> failed (exit N | signal S | refused | could not run) <what it was doing>: <first line of stderr>
 * ```
 */
export class ProgramError extends TicryptNetError {
  /** The program that failed (`nft`, `ovs-vsctl`, ...). */
  readonly program: string;
  /** The program and its arguments. */
  readonly command: readonly string[];
  readonly netns: string | undefined;
  /** `undefined` when it could not be started or was killed. */
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  /** Its whole stderr. */
  readonly stderr: string;
  /** What it was doing, as the message says it. */
  readonly doing: string;

  constructor(code: string, failure: ProgramFailure, doing: string, options?: ErrorOptions) {
    super(code, programFailureMessage(failure, doing), options);
    this.name = 'ProgramError';
    this.program = failure.command[0] ?? 'program';
    this.command = failure.command;
    this.netns = failure.netns;
    this.exitCode = failure.exitCode;
    this.signal = failure.signal;
    this.stderr = failure.stderr;
    this.doing = doing;
  }
}

/** `<program> failed (<how>) <doing>: <first stderr line>`: the one message of a failed program. */
export function programFailureMessage(failure: ProgramFailure, doing: string): string {
  const how =
    failure.exitCode !== undefined
      ? `exit ${failure.exitCode}`
      : failure.signal !== undefined
        ? `signal ${failure.signal}`
        : failure.refused === true
          ? 'refused'
          : 'could not run';
  const firstLine = failure.stderr.split('\n').find((line) => line.trim() !== '') ?? '(no output)';
  return `${failure.command[0] ?? 'program'} failed (${how}) ${doing}: ${firstLine.trim()}`;
}
