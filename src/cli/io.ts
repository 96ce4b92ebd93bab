/** Where CLI commands write. The entry passes the process's streams; tests pass buffers. */
export interface CliIo {
  /** Write to standard output (a trailing newline is the caller's). */
  out(text: string): void;
  /** Write to standard error. */
  err(text: string): void;
}

/** The global options every command sees. */
export interface GlobalOptions {
  /** Print machine-readable JSON instead of text. */
  readonly json?: boolean;
}

/** Serialize a value for `--json` output: two-space indent, trailing newline. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
