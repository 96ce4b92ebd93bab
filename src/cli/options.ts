import { UsageError } from '../errors/usage-error.js';

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
