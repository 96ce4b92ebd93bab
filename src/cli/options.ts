import type { Command } from 'commander';
import { UsageError } from '../errors/usage-error.js';
import { DEFAULT_HOOK_CONFIG, DEFAULT_LIBVIRT_URI } from '../names.js';

/**
 * Parse a command-line integer option strictly (no `1e3`, no `12abc`).
 *
 * @throws {UsageError} `E_USAGE`: `--boot: expected an integer 1-65535, found "x"`.
 */
export function parseInteger(flag: string, value: string, min: number, max: number): number {
  const number = /^-?[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new UsageError(`${flag}: expected an integer ${min}-${max}, found ${JSON.stringify(value)}`);
  }
  return number;
}

/** `--connect <uri>`: the one name of the libvirt connection, on every command that talks to libvirt. */
export function withConnect(command: Command): Command {
  return command.option('--connect <uri>', 'libvirt connection URI', DEFAULT_LIBVIRT_URI);
}

/** `--config <file>`: the hook configuration, on every command that reads it. */
export function withHookConfig(command: Command): Command {
  return command.option('--config <file>', 'hook configuration', DEFAULT_HOOK_CONFIG);
}
