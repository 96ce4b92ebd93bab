import { ProgramError } from './program-error.js';
import { NFT_TABLE_REF } from '../names.js';

/**
 * `nft` refused a transaction (or could not be run): nothing of it was
 * applied, a transaction is atomic (one `nft -f` run, or one line of the DNS
 * front's `nft -i`). Carries the whole result: the exit code, stderr and the
 * script that was fed.
 *
 * @example
 * ```
 * nft failed (exit 1) applying table inet ticrypt: /dev/stdin:3:1-5: Error: Could not process rule: No such file or directory
 * ```
 */
export class NftError extends ProgramError {
  /** The script that was fed to `nft -f -` (or the transaction line fed to `nft -i`). */
  readonly script: string;

  constructor(
    details: {
      exitCode: number | undefined;
      stderr: string;
      script: string;
      /** Default `nft`. */
      program?: string;
      /** The command run, default `<program> -f -`. */
      command?: readonly string[];
      /** A long-lived `nft -i` refused this transaction and runs on (no exit code). */
      refused?: boolean;
      /** Default `applying table inet ticrypt`. */
      action?: string;
      signal?: string | undefined;
      netns?: string | undefined;
    },
    options?: ErrorOptions,
  ) {
    super(
      'E_NFT_APPLY',
      {
        command: details.command ?? [details.program ?? 'nft', '-f', '-'],
        stderr: details.stderr,
        refused: details.refused,
        exitCode: details.exitCode,
        signal: details.signal,
        netns: details.netns,
      },
      details.action ?? `applying table ${NFT_TABLE_REF}`,
      options,
    );
    this.name = 'NftError';
    this.script = details.script;
  }
}
