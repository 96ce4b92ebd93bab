import { TicryptNetError } from './ticrypt-net-error.js';

/** An API request refused at the edge: bad input (400), no or wrong token (401), wrong role (403), ... */
export class ApiError extends TicryptNetError {
  /** The HTTP status to answer with. */
  readonly status: number;
  /** For invalid requests: each offending field and what was wrong. */
  readonly issues: readonly { path: string; message: string }[] | undefined;

  constructor(status: number, code: string, message: string, issues?: readonly { path: string; message: string }[]) {
    super(code, message);
    this.name = 'ApiError';
    this.status = status;
    this.issues = issues;
  }
}
