/**
 * The side-effect edge: feeding a script to `nft -f -`. Never a shell; the
 * script goes on stdin. Injectable, so tests run nft inside a namespace.
 */
import { execa } from 'execa';
import { NftError } from '../../errors/nft-error.js';

/** Runs one nft script (text, or its UTF-8 bytes) as one atomic transaction; rejects with {@link NftError}. */
export type NftRunner = (script: string | Uint8Array) => Promise<void>;

/** Where and how to run nft. */
export interface NftRunnerOptions {
  /** Run inside this network namespace (`ip netns exec NS nft ...`); default: the current one. */
  readonly netns?: string;
  /** Only check the script (`nft -c`), change nothing. Default `false`. */
  readonly check?: boolean;
  /** Milliseconds before nft is killed. Default 60 000. */
  readonly timeout?: number;
}

/** The argv that runs `nft [-c] -f -`, in a namespace when asked. */
export function nftCommand(options: NftRunnerOptions = {}): [string, ...string[]] {
  const nft = ['nft', ...(options.check === true ? ['-c'] : []), '-f', '-'];
  return options.netns === undefined ? (nft as [string, ...string[]]) : ['ip', 'netns', 'exec', options.netns, ...nft];
}

/**
 * An {@link NftRunner} that runs the real `nft`. An empty script is not run.
 *
 * @example
 * const apply = nftRunner();                     // production: nft -f -
 * const applyIn = nftRunner({ netns: 'lab1' }); // tests: ip netns exec lab1 nft -f -
 * await apply(renderRuleset(site, state));
 */
export function nftRunner(options: NftRunnerOptions = {}): NftRunner {
  const [program, ...args] = nftCommand(options);
  return async (script) => {
    if (script.length === 0) return;
    const result = await execa(program, args, {
      input: script,
      reject: false,
      timeout: options.timeout ?? 60_000,
      stripFinalNewline: true,
    });
    if (result.exitCode !== 0 || result.failed) {
      throw new NftError(
        {
          exitCode: result.exitCode,
          stderr: (result.stderr ?? '') || (result.message ?? ''),
          script: typeof script === 'string' ? script : Buffer.from(script).toString('utf8'),
        },
        { cause: result },
      );
    }
  };
}
