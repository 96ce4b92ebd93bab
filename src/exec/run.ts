/**
 * The one way ticrypt-net runs another program: execa with an argument list,
 * never a shell; inside a network namespace when asked (the `netns` option);
 * bounded in time; `LC_ALL=C`, so what it prints can be read.
 *
 * For: every edge that runs nft (the DNS front's long-lived `nft -i` too),
 * conntrack, dnsmasq, ovs-vsctl, ip, nmcli or virsh. May not: decide what a
 * failure means beyond "not exit 0": a run resolves with the whole result,
 * and {@link runChecked} (or the edge itself) throws the program's own error
 * (`./program-errors.ts`).
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { inNetns } from './netns.js';
import { programError } from './program-errors.js';

/** How to run a program. */
export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec NAME ...`); default: the current one. */
  readonly netns?: string;
  /** Fed to its stdin (otherwise stdin is closed). */
  readonly input?: string | Uint8Array;
  /** Milliseconds before it is killed. Default 30 000. */
  readonly timeoutMs?: number;
}

/** What a program run gave back, whatever the exit code. */
export interface ProgramResult {
  /** The program and its arguments, as the program saw them. */
  readonly command: readonly string[];
  /** The network namespace it ran in, if any. */
  readonly netns?: string;
  /** `undefined` when it could not be started or was killed. */
  readonly exitCode: number | undefined;
  /** The signal that ended it (a time-out kills it), if one did. */
  readonly signal: string | undefined;
  readonly stdout: string;
  /** Its stderr; when it could not be started, why. */
  readonly stderr: string;
}

/**
 * Run `program` with `args` to its end.
 *
 * @throws {UsageError} `E_USAGE` only when `netns` is not a namespace name; a failed run resolves.
 * @example const result = await runProgram('ovs-vsctl', ['show'], { netns: 'lab1' });
 */
export async function runProgram(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProgramResult> {
  const [file, ...argv] = inNetns(options.netns, [program, ...args]);
  const result = await execa(file, argv, {
    reject: false,
    timeout: options.timeoutMs ?? 30_000,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    env: { LC_ALL: 'C' },
  });
  const exitCode = result.exitCode;
  const stderr = String(result.stderr ?? '');
  return {
    command: [program, ...args],
    ...(options.netns === undefined ? {} : { netns: options.netns }),
    exitCode,
    signal: result.signal,
    stdout: String(result.stdout ?? ''),
    // A program that never ran has no stderr: say why instead (not found, timed out).
    stderr: exitCode === undefined && stderr === '' ? (result.message ?? '') : stderr,
  };
}

/** Runs one program with the options it was made with; what host set-up and doctor are given (tests inject their own). */
export type ProgramRunner = (
  program: string,
  args: readonly string[],
  options?: { readonly input?: string },
) => Promise<ProgramResult>;

/**
 * A {@link ProgramRunner} bound to a namespace and a time limit.
 *
 * @example const run = programRunner({ netns: 'backend' }); await run('nft', ['list', 'ruleset']);
 */
export function programRunner(options: Omit<RunOptions, 'input'> = {}): ProgramRunner {
  return (program, args, run = {}) =>
    runProgram(program, args, { ...options, ...(run.input === undefined ? {} : { input: run.input }) });
}

/**
 * Run and insist on exit 0.
 *
 * @returns its stdout.
 * @throws {ProgramError} the program's own error (`nft`: `NftError`, `ovs-vsctl`: `OvsVsctlError`, ...) naming what was being done.
 */
export async function runChecked(
  run: ProgramRunner,
  doing: string,
  program: string,
  args: readonly string[],
  options: { readonly input?: string } = {},
): Promise<string> {
  const result = await run(program, args, options);
  if (result.exitCode !== 0) throw programError(result, doing);
  return result.stdout;
}

/** How a daemon runs: stdin and stdout closed, stderr piped for its log, never rejecting. */
const DAEMON = {
  reject: false,
  buffer: false,
  stdin: 'ignore',
  stdout: 'ignore',
  stderr: 'pipe',
  forceKillAfterDelay: 5000,
  env: { LC_ALL: 'C' },
} as const;

/** How an interactive program runs: a daemon whose stdin is piped, for the requests it reads one line at a time. */
const INTERACTIVE = { ...DAEMON, stdin: 'pipe' } as const;

/** A started long-running program: its argv (as the program saw it) and execa's subprocess. */
export interface StartedProgram<O extends Options> {
  readonly command: readonly string[];
  readonly subprocess: ResultPromise<O>;
}

/**
 * Start a long-running program in the foreground (a supervised daemon): its
 * stdin and stdout closed, its stderr piped for its log. The subprocess is
 * execa's; it never rejects (see its result).
 *
 * @throws {UsageError} `E_USAGE` when `netns` is not a namespace name.
 */
export function startProgram(
  program: string,
  args: readonly string[],
  options: Pick<RunOptions, 'netns'> = {},
): StartedProgram<typeof DAEMON> {
  const [file, ...argv] = inNetns(options.netns, [program, ...args]);
  return { command: [program, ...args], subprocess: execa(file, argv, DAEMON) };
}

/**
 * Start a long-running program that takes requests on its stdin, one line
 * each, and answers on its stderr (`nft -i`): stdin piped, stdout closed,
 * stderr piped. Like {@link startProgram} otherwise: `LC_ALL=C` (its answers
 * can be read), never a shell, never rejecting.
 *
 * @throws {UsageError} `E_USAGE` when `netns` is not a namespace name.
 * @example const { subprocess } = startInteractive('nft', ['-i'], { netns: 'lab1' }); subprocess.stdin.write('list tables\n');
 */
export function startInteractive(
  program: string,
  args: readonly string[],
  options: Pick<RunOptions, 'netns'> = {},
): StartedProgram<typeof INTERACTIVE> {
  const [file, ...argv] = inNetns(options.netns, [program, ...args]);
  return { command: [program, ...args], subprocess: execa(file, argv, INTERACTIVE) };
}
