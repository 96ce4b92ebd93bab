/**
 * The base of every error ticrypt-net throws on purpose.
 *
 * Each subclass has a stable `code` (`E_SITE_INVALID`, `E_XML_PARSE`, ...) that
 * callers may switch on, and carries the context that explains it as properties.
 * Use {@link isTicryptNetError} rather than `instanceof` where several copies of
 * the package may be loaded.
 */
export class TicryptNetError extends Error {
  /** Stable, machine-readable error code. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TicryptNetError';
    this.code = code;
  }
}

/**
 * Whether `value` is an error thrown by ticrypt-net (compares the shape, so it
 * works across module copies).
 */
export function isTicryptNetError(value: unknown): value is TicryptNetError {
  if (!(value instanceof Error)) return false;
  const { code } = value as { code?: unknown };
  return typeof code === 'string' && code.startsWith('E_');
}
