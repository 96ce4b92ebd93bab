import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * A call to the backend API failed: it answered with an error
 * (`E_BACKEND_REFUSED`, with its status and error body), or could not be
 * reached in time (`E_BACKEND_UNREACHABLE`).
 */
export class BackendRequestError extends TicryptNetError {
  /** The HTTP status, when the backend answered. */
  readonly status: number | undefined;
  /** The backend's error code (`E_MAC_CONFLICT`, ...), when it answered with one. */
  readonly backendCode: string | undefined;

  constructor(
    code: 'E_BACKEND_REFUSED' | 'E_BACKEND_UNREACHABLE',
    message: string,
    details: { status?: number; backendCode?: string; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'BackendRequestError';
    this.status = details.status;
    this.backendCode = details.backendCode;
  }
}
