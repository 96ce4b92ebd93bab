/**
 * The side-effect edge of nftables: feeding a script to `nft -f -` through
 * the one program runner (no shell; the script goes on stdin). Injectable, so
 * tests run nft inside a namespace. May not: render anything (the renderers
 * beside it do) or judge nft's refusal beyond throwing {@link NftError}.
 */
import { NftError } from '../../errors/nft-error.js';
import { runProgram } from '../../exec/run.js';
import { inNetns } from '../../exec/netns.js';

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

function nftArgs(options: NftRunnerOptions): string[] {
  return [...(options.check === true ? ['-c'] : []), '-f', '-'];
}

/** The argv that runs `nft [-c] -f -`, in a namespace when asked. */
export function nftCommand(options: NftRunnerOptions = {}): [string, ...string[]] {
  return inNetns(options.netns, ['nft', ...nftArgs(options)]);
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
  const args = nftArgs(options);
  inNetns(options.netns, ['nft']);
  return async (script) => {
    if (script.length === 0) return;
    const result = await runProgram('nft', args, {
      input: script,
      timeoutMs: options.timeout ?? 60_000,
      ...(options.netns === undefined ? {} : { netns: options.netns }),
    });
    if (result.exitCode !== 0) {
      throw new NftError(
        {
          exitCode: result.exitCode,
          signal: result.signal,
          netns: result.netns,
          stderr: result.stderr,
          script: typeof script === 'string' ? script : Buffer.from(script).toString('utf8'),
        },
        { cause: result },
      );
    }
  };
}
