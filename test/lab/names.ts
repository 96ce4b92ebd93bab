import { randomBytes } from 'node:crypto';

/**
 * A per-run prefix for every namespace, bridge, port and domain a lab test
 * creates, short enough for 15-character interface names: `t` + 4 hex digits.
 */
export function runPrefix(): string {
  return `t${randomBytes(2).toString('hex')}`;
}
