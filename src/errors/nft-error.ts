import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * `nft` refused a transaction (or could not be run): nothing of it was
 * applied, `nft -f` is atomic. Also thrown when `conntrack -D` fails
 * (`program` `conntrack`).
 *
 * Carries the whole result: the exit code, stderr and the script that was fed.
 *
 * @example
 * ```
 * nft failed (exit 1) applying table inet ticrypt: /dev/stdin:3:1-5: Error: Could not process rule: No such file or directory
 * ```
 */
export class NftError extends TicryptNetError {
  /** nft's exit code (`undefined` when it could not be started or was killed). */
  readonly exitCode: number | undefined;
  /** nft's whole stderr. */
  readonly stderr: string;
  /** The script that was fed to `nft -f -` (for conntrack: the command line). */
  readonly script: string;

  constructor(
    details: { exitCode: number | undefined; stderr: string; script: string; program?: string; action?: string },
    options?: ErrorOptions,
  ) {
    const program = details.program ?? 'nft';
    const action = details.action ?? 'applying table inet ticrypt';
    super('E_NFT_APPLY', formatNftError(program, action, details.exitCode, details.stderr), options);
    this.name = 'NftError';
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
    this.script = details.script;
  }
}

function formatNftError(program: string, action: string, exitCode: number | undefined, stderr: string): string {
  const firstLine = stderr.split('\n').find((line) => line.trim() !== '') ?? '(no output)';
  const status = exitCode === undefined ? 'could not run' : `exit ${exitCode}`;
  return `${program} failed (${status}) ${action}: ${firstLine.trim()}`;
}
