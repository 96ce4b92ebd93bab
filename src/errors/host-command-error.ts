import { ProgramError } from './program-error.js';

/**
 * A program host or backend set-up runs (ovs-vsctl, ovs-ofctl, virsh, ip, nmcli, sysctl,
 * systemctl) failed, while observing or applying an action. Carries the
 * command, its exit code and stderr; the message says what was being done.
 * Each of those programs has its own kind ({@link OvsVsctlError},
 * {@link IpError}, {@link NmcliError}, {@link VirshError}, {@link SysctlError},
 * {@link SystemctlError}), all with this code.
 */
export class HostCommandError extends ProgramError {
  constructor(
    doing: string,
    command: readonly string[],
    exitCode: number | undefined,
    stderr: string,
    options?: ErrorOptions & { signal?: string | undefined; netns?: string | undefined },
  ) {
    super(
      'E_HOST_COMMAND',
      { command, stderr, exitCode, signal: options?.signal, netns: options?.netns },
      doing,
      options,
    );
    this.name = 'HostCommandError';
  }
}
