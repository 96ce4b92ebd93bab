import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { readFileSync } from 'node:fs';
import type { HookConfig } from './config-types.js';

/** A backend answer: HTTP status and parsed JSON body (undefined when not JSON). */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Sends one JSON POST and resolves with the answer, or rejects when there is none in time. */
export type Transport = (path: string, body: unknown, timeoutMs: number) => Promise<Answer>;

/**
 * A minimal JSON-over-HTTP(S) transport for the hook: `node:http`, with
 * `node:https` loaded only for an https URL (it costs milliseconds of start-up
 * the hook does not have), no keep-alive, every request bounded by
 * `timeoutMs` from start to the last byte.
 *
 * @throws when the CA file cannot be read.
 * @example const post = await httpTransport(config, token); await post('/v1/register', body, 500);
 */
export async function httpTransport(config: HookConfig, token: string): Promise<Transport> {
  const base = new URL(config.backend.url);
  const ca = config.backend.caFile === undefined ? undefined : readFileSync(config.backend.caFile);
  // Loaded only for https: TLS costs start-up time the hook does not have on a plain-HTTP management link.
  const send = base.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  return (path, body, timeoutMs) =>
    new Promise<Answer>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const options: RequestOptions & { ca?: Buffer } = {
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          connection: 'close',
        },
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
        ...(ca === undefined ? {} : { ca }),
      };
      const req = send(new URL(path, base), options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', (error: Error) =>
        reject(
          error.name === 'AbortError' || error.name === 'TimeoutError'
            ? new Error(`no answer within ${timeoutMs} ms`)
            : error,
        ),
      );
      req.end(payload);
    });
}
