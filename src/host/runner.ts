import { execa } from 'execa';
import { HostCommandError } from '../errors/host-command-error.js';

/** What a program run gave back. */
export interface CommandResult {
  /** `undefined` when the program could not start or was killed. */
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one program (never a shell); resolves with its result, whatever the exit code. */
export type CommandRunner = (
  program: string,
  args: readonly string[],
  options?: { input?: string },
) => Promise<CommandResult>;

/** How {@link commandRunner} runs programs. */
export interface CommandRunnerOptions {
  /** Per-command time limit in ms (default 30000). */
  readonly timeoutMs?: number;
  /** Run inside this network namespace (`ip netns exec NAME ...`). */
  readonly netns?: string;
}

/**
 * The real runner: execa, no shell, bounded in time.
 *
 * @example const result = await commandRunner()('ovs-vsctl', ['show']);
 */
export function commandRunner(options: CommandRunnerOptions = {}): CommandRunner {
  return async (program, args, run = {}) => {
    const [file, ...rest] =
      options.netns === undefined ? [program, ...args] : ['ip', 'netns', 'exec', options.netns, program, ...args];
    const result = await execa(file as string, rest, {
      reject: false,
      timeout: options.timeoutMs ?? 30_000,
      stdin: run.input === undefined ? 'ignore' : 'pipe',
      ...(run.input === undefined ? {} : { input: run.input }),
      env: { LC_ALL: 'C' },
    });
    return {
      exitCode: result.exitCode,
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? (result.failed ? result.message : '')),
    };
  };
}

/**
 * Run and insist on exit 0.
 *
 * @throws {HostCommandError} `E_HOST_COMMAND` naming what was being done.
 */
export async function runChecked(
  run: CommandRunner,
  doing: string,
  program: string,
  args: readonly string[],
  options: { input?: string } = {},
): Promise<string> {
  const result = await run(program, args, options);
  if (result.exitCode !== 0) throw new HostCommandError(doing, [program, ...args], result.exitCode, result.stderr);
  return result.stdout;
}
