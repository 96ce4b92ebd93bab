import { CommanderError } from 'commander';
import { SiteError } from '../errors/site-error.js';
import { isTicryptNetError } from '../errors/ticrypt-net-error.js';
import { type CliIo, toJson } from './io.js';
import { createProgram } from './program.js';

/** Exit codes: 0 success, 1 failure of the operation, 2 invalid input (site, arguments, XML). */
export const EXIT = { ok: 0, failure: 1, invalid: 2 } as const;

const INVALID_INPUT = new Set(['E_SITE_INVALID', 'E_USAGE', 'E_XML_PARSE', 'E_NFT_INPUT', 'E_DNSMASQ_INPUT']);

/**
 * Run the CLI on `argv` (without `node` and the script) and return the exit
 * code. Every error is reported on `io.err`, as text or, with `--json`, as
 * `{"error":{"code","message","issues"?}}`.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  const json = argv.includes('--json');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" only in commander's bookkeeping; it has already printed them.
      if (error.exitCode === 0) return EXIT.ok;
      if (json) io.err(toJson({ error: { code: 'E_USAGE', message: error.message } }));
      return EXIT.invalid;
    }
    if (isTicryptNetError(error)) {
      const issues = error instanceof SiteError ? error.issues : undefined;
      io.err(
        json
          ? toJson({ error: { code: error.code, message: error.message, ...(issues ? { issues } : {}) } })
          : `${error.message}\n`,
      );
      return INVALID_INPUT.has(error.code) ? EXIT.invalid : EXIT.failure;
    }
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    io.err(json ? toJson({ error: { code: 'E_INTERNAL', message } }) : `ticrypt-net: unexpected error: ${message}\n`);
    return EXIT.failure;
  }
}
