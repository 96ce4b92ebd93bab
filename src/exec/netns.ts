/**
 * Running a command inside a network namespace: `ip netns exec NAME COMMAND`,
 * which execs the command in place (so a pid is still the program's). Pure
 * argv building, with the namespace name checked.
 *
 * For: `./run.ts`, and callers that print or test the argv. May not: run
 * anything.
 */
import { UsageError } from '../errors/usage-error.js';
import { describeValue } from '../site/describe.js';

/** Turns a command (program first) into the command actually run, e.g. inside a network namespace. */
export type CommandWrapper = (command: readonly string[]) => readonly string[];

/** Whether `name` may be a network namespace name (`ip netns`' own limits, no path tricks). */
export function isNetnsName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) && name !== '.' && name !== '..';
}

/**
 * The argv that runs `command` in namespace `netns` (or as it is, without one).
 *
 * @throws {UsageError} `E_USAGE` when `netns` is not a namespace name.
 * @example inNetns('lab1', ['nft', '-f', '-']) // ['ip', 'netns', 'exec', 'lab1', 'nft', '-f', '-']
 */
export function inNetns(netns: string | undefined, command: readonly string[]): [string, ...string[]] {
  const [program, ...args] = command;
  if (program === undefined) throw new UsageError('command: expected a program to run, found none');
  if (netns === undefined) return [program, ...args];
  if (!isNetnsName(netns)) {
    throw new UsageError(
      `netns: expected a namespace name of letters, digits, '_', '.' or '-', found ${describeValue(netns)}`,
    );
  }
  return ['ip', 'netns', 'exec', netns, program, ...args];
}

/**
 * A {@link CommandWrapper} that runs commands inside network namespace `name`.
 *
 * @throws {UsageError} `E_USAGE` when `name` is not a namespace name.
 */
export function netnsWrapper(name: string): CommandWrapper {
  inNetns(name, ['true']);
  return (command) => inNetns(name, command);
}
