/**
 * The host agent's HTTP transport to the backend API: one bounded JSON POST
 * per connection, straight on a TCP or TLS socket (node:http costs a hook run
 * milliseconds it does not have). For the hook call and `host flush|reconcile`.
 * May not: retry, spool or interpret an answer (that is `deliver.ts`), or load
 * anything a hook run does not need.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { exchange } from '../../exec/socket-exchange.js';
import { BackendRequestError } from '../../errors/backend-request-error.js';
import type { ApiPaths } from '../../protocol/api.js';
import type { HookConfig } from '../setup/config-types.js';

/** A backend answer: HTTP status and parsed JSON body (undefined when not JSON). */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** The routes a host posts to. */
export type HostPath = ApiPaths['register' | 'deregister' | 'reconcile'];

/** Sends one JSON POST and resolves with the answer, or rejects when there is none in time. */
export type Transport = ((path: HostPath, body: unknown, timeoutMs: number) => Promise<Answer>) & {
  /** Open the first connection ahead of the first request (it overlaps the caller's local work). */
  preconnect?: () => void;
  /** Close a preconnected socket no request used. */
  close?: () => void;
};

/** A transport failure: no (readable) answer from the backend. */
function unreachable(message: string): BackendRequestError {
  return new BackendRequestError('E_BACKEND_UNREACHABLE', message);
}

/** Largest answer read: the API's answers are a few hundred bytes (a reconcile's a few MB at most). */
const MAX_ANSWER = 16 * 1024 * 1024;

/**
 * A minimal JSON-over-HTTP/1.1 transport for the hook, straight on a TCP
 * (or, for an https URL, TLS) socket: one request per connection
 * (`Connection: close`), the answer read to the end. `node:http` costs
 * several milliseconds of loading and request set-up that a hook run on every
 * VM start does not have; `node:tls` is loaded only for https. Every request
 * is bounded by `timeoutMs` from connect to the last byte. TLS verifies the
 * backend's certificate against `caFile` (or the system's CAs) and its name
 * or IP address.
 *
 * @throws when the CA file cannot be read.
 * @example const post = await httpTransport(config, token); await post('/v1/register', body, 500);
 */
export async function httpTransport(config: HookConfig, token: string): Promise<Transport> {
  const base = new URL(config.backend.url);
  const secure = base.protocol === 'https:';
  const host = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(base.port || (secure ? 443 : 80));
  const ca = config.backend.caFile === undefined ? undefined : readFileSync(config.backend.caFile);
  const tls = secure ? await import('node:tls') : undefined;
  const connectEvent = tls ? 'secureConnect' : 'connect';
  type Pending = { socket: Socket; ready: boolean; error?: Error };
  const open = (): Pending => {
    const socket = tls
      ? tls.connect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...(ca ? { ca } : {}) })
      : netConnect({ host, port });
    const pending: Pending = { socket, ready: false };
    socket.once(connectEvent, () => (pending.ready = true));
    socket.on('error', (error) => (pending.error = error));
    return pending;
  };
  let spare: Pending | undefined;
  const send: Transport = (path, body, timeoutMs) => {
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    const target = new URL(path, base);
    const head =
      `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${base.host}\r\n` +
      `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nAccept: application/json\r\n` +
      `Content-Length: ${payload.length}\r\nConnection: close\r\n\r\n`;
    const connection = spare ?? open();
    spare = undefined;
    const { socket } = connection;
    socket.setNoDelay(true);
    socket.once(connectEvent, () => socket.write(Buffer.concat([Buffer.from(head), payload])));
    return exchange(socket, {
      timeoutMs,
      maxBytes: MAX_ANSWER,
      parse: parseAnswer,
      errors: {
        timeout: () => unreachable(`no answer within ${timeoutMs} ms`),
        tooLarge: () => unreachable(`answer larger than ${MAX_ANSWER} bytes`),
        closed: () => unreachable('connection closed before an answer'),
        socket: (error) => error,
      },
    });
  };
  send.preconnect = () => {
    spare ??= open();
  };
  send.close = () => {
    spare?.socket.destroy();
    spare = undefined;
  };
  return send;
}

/**
 * Parse an HTTP/1.1 response read to connection close: status line, headers,
 * and a body by Content-Length, chunked encoding, or to the end.
 *
 * @throws {BackendRequestError} `E_BACKEND_UNREACHABLE` on a malformed response.
 */
export function parseAnswer(raw: Buffer): Answer {
  const split = raw.indexOf('\r\n\r\n');
  if (split === -1) throw unreachable('malformed HTTP answer: no end of headers');
  const lines = raw.subarray(0, split).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] ([0-9]{3})/.exec(lines[0] ?? '')?.[1];
  if (status === undefined)
    throw unreachable(`malformed HTTP answer: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.subarray(split + 4);
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) body = dechunk(body);
  else if (headers.has('content-length')) body = body.subarray(0, Number(headers.get('content-length')));
  let json: unknown;
  try {
    json = body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: Number(status), body: json };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol === -1) throw unreachable('malformed chunked HTTP answer');
    const length = Number.parseInt(data.subarray(at, eol).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isSafeInteger(length) || length < 0) throw unreachable('malformed chunked HTTP answer');
    if (length === 0) return Buffer.concat(parts);
    parts.push(data.subarray(eol + 2, eol + 2 + length));
    at = eol + 2 + length + 2;
  }
}
