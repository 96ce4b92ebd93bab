import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * `audit verify` found the hash chain broken (`E_AUDIT_CHAIN`): a line
 * removed, edited, inserted or moved, or a file missing that retention did
 * not record. Carries the first break's file, line and what was expected.
 *
 * @example
 * // audit chain broken at audit-2026-12-01.jsonl line 17: prev expected 3fa1..., found 9b02...
 */
export class AuditChainError extends TicryptNetError {
  /** The file of the first break. */
  readonly file: string;
  /** Its 1-based line (0: the break is the file itself, e.g. its chain start). */
  readonly line: number;

  constructor(file: string, line: number, detail: string) {
    super('E_AUDIT_CHAIN', `audit chain broken at ${file}${line > 0 ? ` line ${line}` : ''}: ${detail}`);
    this.name = 'AuditChainError';
    this.file = file;
    this.line = line;
  }
}
