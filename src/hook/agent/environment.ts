/**
 * This host's credentials and transport: the token file, checked against
 * `hostId` and its permissions, and the real backend transport of a
 * configuration. Used by the hook call, `hook check` and `host
 * flush|reconcile`. May not: read the config file itself (it is given the
 * validated configuration).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { HookConfigError } from '../../errors/hook-config-error.js';
import { httpTransport, type Transport } from './client.js';
import type { HookConfig } from '../setup/config-types.js';

/**
 * Read this host's token from `backend.tokenFile`, check no one but its
 * owner may read the file (mode 0600 or stricter), and that it belongs to
 * `hostId` (a token is `<hostId>.<secret>`).
 *
 * @throws {HookConfigError} `E_HOOK_CONFIG` naming the file and what was wrong.
 */
export function readToken(config: HookConfig, configFile = 'hook.yaml'): string {
  let token: string;
  let mode: number;
  try {
    const fd = openSync(config.backend.tokenFile, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      mode = fstatSync(fd).mode & 0o777;
      token = readFileSync(fd, 'utf8').trim();
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw new HookConfigError(configFile, [
      {
        path: 'backend.tokenFile',
        message: `expected a readable token file, found ${(error as NodeJS.ErrnoException).code ?? String(error)} reading ${config.backend.tokenFile}`,
      },
    ]);
  }
  if ((mode & 0o077) !== 0) {
    throw new HookConfigError(configFile, [
      {
        path: 'backend.tokenFile',
        message: `expected a token file only its owner may read (chmod 600), found mode ${mode.toString(8).padStart(4, '0')} on ${config.backend.tokenFile}`,
      },
    ]);
  }
  if (!token.startsWith(`${config.hostId}.`) || !/^[A-Za-z0-9_.~+/=-]{1,512}$/.test(token)) {
    const owner = token.includes('.') ? token.slice(0, token.lastIndexOf('.')) : '(none)';
    throw new HookConfigError(configFile, [
      {
        path: 'backend.tokenFile',
        message: `expected a token of host ${config.hostId} ('${config.hostId}.<secret>') in ${config.backend.tokenFile}, found one of ${JSON.stringify(owner)}`,
      },
    ]);
  }
  return token;
}

/** The real backend transport of a configuration: its token, CA and URL. */
export async function transportOf(config: HookConfig): Promise<Transport> {
  return httpTransport(config, readToken(config));
}
