import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AdminClient } from '../backend/api/admin-client.js';
import { UsageError } from '../errors/usage-error.js';
import { DEFAULT_ADMIN_TOKEN_FILE, DEFAULT_BACKEND_URL } from '../names.js';

/** The options every admin command takes to reach the backend. */
export interface ConnectionOptions {
  backend?: string;
  tokenFile?: string;
  ca?: string;
  timeout?: string;
}

/** An admin client from the command's options (URL, token file, CA, time limit) and the environment. */
export async function adminClient(options: ConnectionOptions): Promise<AdminClient> {
  const url = options.backend ?? process.env.TICRYPT_NET_BACKEND ?? DEFAULT_BACKEND_URL;
  const tokenFile = options.tokenFile ?? process.env.TICRYPT_NET_TOKEN_FILE ?? DEFAULT_ADMIN_TOKEN_FILE;
  let token: string;
  try {
    token = (await readFile(tokenFile, 'utf8')).trim();
  } catch (error) {
    throw new UsageError(
      `--token-file: expected a readable file with the admin token, found ${(error as NodeJS.ErrnoException).code ?? String(error)} at ${tokenFile}`,
    );
  }
  return new AdminClient({
    url,
    token,
    ...(options.ca === undefined ? {} : { ca: await readFile(options.ca) }),
    timeoutMs: options.timeout === undefined ? 10_000 : Number(options.timeout),
  });
}

/** Add the connection options (`--backend`, `--token-file`, `--ca`, `--timeout`) to a command. */
export function withConnection(command: Command): Command {
  return command
    .option('--backend <url>', `backend API URL (env TICRYPT_NET_BACKEND; default ${DEFAULT_BACKEND_URL})`)
    .option('--token-file <file>', `admin token file (env TICRYPT_NET_TOKEN_FILE; default ${DEFAULT_ADMIN_TOKEN_FILE})`)
    .option('--ca <file>', 'CA certificate (PEM) the backend certificate is signed by')
    .option('--timeout <ms>', 'request time limit in ms', '10000');
}
