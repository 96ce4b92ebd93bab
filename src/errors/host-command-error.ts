import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A program host set-up runs (ovs-vsctl, virsh, ip, nmcli) failed, while
 * observing the host or applying an action. Carries the command, its exit
 * code and stderr; the message says what was being done.
 */
export class HostCommandError extends TicryptNetError {
  /** The program and its arguments. */
  readonly command: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;

  constructor(
    doing: string,
    command: readonly string[],
    exitCode: number | undefined,
    stderr: string,
    options?: ErrorOptions,
  ) {
    const first = stderr.trim().split('\n')[0] ?? '';
    super(
      'E_HOST_COMMAND',
      `${command[0] ?? 'command'} failed (exit ${exitCode ?? 'none'}) ${doing}: ${first || '(no output)'}`,
      options,
    );
    this.name = 'HostCommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}
