import { describeValue } from '../site/describe.js';
import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A program ran and succeeded, but what it printed is not what ticrypt-net
 * reads from it (another version's format, a truncated answer).
 *
 * @example
 * ```
 * ovs-vsctl printed what cannot be read: expected --format=json output with headings and data, found "<html>"
 * ```
 */
export class ProgramOutputError extends TicryptNetError {
  /** The program whose output it was. */
  readonly program: string;
  /** The start of what it printed. */
  readonly output: string;

  constructor(program: string, expected: string, output: string, options?: ErrorOptions) {
    super(
      'E_PROGRAM_OUTPUT',
      `${program} printed what cannot be read: expected ${expected}, found ${describeValue(output)}`,
      options,
    );
    this.name = 'ProgramOutputError';
    this.program = program;
    this.output = output.slice(0, 200);
  }
}
