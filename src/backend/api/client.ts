import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BackendRequestError } from '../../errors/backend-request-error.js';

/** How to reach the backend API. */
export interface BackendClientOptions {
  /** Base URL, e.g. `https://198.18.0.1:8443`. */
  readonly url: string;
  /** Bearer token (a host's or an admin's). */
  readonly token: string;
  /** PEM CA certificate(s) to trust for an `https` URL (default: the system's). */
  readonly ca?: string | Buffer;
  /** Per-request time limit in ms (default 5000). */
  readonly timeoutMs?: number;
}

/**
 * A minimal JSON client for the backend API on `node:http(s)` (Node 20's
 * `fetch` cannot be given a CA file per request). Every call is bounded by
 * `timeoutMs` from start to last byte.
 *
 * @example
 * const client = new BackendClient({ url, token, ca: await readFile('/etc/ticrypt-net/ca.pem') });
 * await client.call('PUT', `/v1/vms/${uuid}/allow-list`, { entries });
 */
export class BackendClient {
  constructor(private readonly options: BackendClientOptions) {}

  /**
   * Send one request and parse the JSON answer.
   *
   * @throws {BackendRequestError} `E_BACKEND_REFUSED` on a non-2xx answer (its message is the backend's),
   * `E_BACKEND_UNREACHABLE` on a connection error or time-out.
   */
  call<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.options.url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const timeoutMs = this.options.timeoutMs ?? 5000;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const unreachable = (reason: string, cause?: unknown) =>
        new BackendRequestError(
          'E_BACKEND_UNREACHABLE',
          `Backend ${this.options.url} unreachable: ${method} ${url.pathname}: ${reason}`,
          { cause },
        );
      const req = send(
        url,
        {
          method,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            accept: 'application/json',
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
          ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
          signal: AbortSignal.timeout(timeoutMs),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => reject(unreachable(error.message, error)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text === '' ? undefined : JSON.parse(text);
            } catch {
              json = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(json as T);
            const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
            reject(
              new BackendRequestError(
                'E_BACKEND_REFUSED',
                `Backend refused ${method} ${url.pathname} (${status}): ${error?.message ?? text.slice(0, 200)}`,
                { status, ...(error?.code === undefined ? {} : { backendCode: error.code }) },
              ),
            );
          });
        },
      );
      req.on('error', (error) => {
        const reason =
          error.name === 'AbortError' || error.name === 'TimeoutError'
            ? `no answer within ${timeoutMs} ms`
            : error.message;
        reject(unreachable(reason, error));
      });
      req.end(payload);
    });
  }
}
