/**
 * A long-lived `nft -i` for small, frequent transactions (the DNS front opens
 * a destination per answer). Spawning `nft -f -` costs about 4.5-6 ms here;
 * a line to a running `nft -i` about 0.3 ms (see src/backend/dns/DESIGN-NOTES.md).
 *
 * Each line `nft -i` reads is one transaction (its commands joined by `;`).
 * nft prints nothing on success and its errors on stderr, so after each
 * transaction line the session writes a marker word, which nft refuses with
 * a syntax error that echoes it: on the one stderr stream, everything before
 * the marker's echo belongs to that transaction, in order.
 *
 * For: the DNS front's opens and closes (`renderDnsOps`). May not: start nft
 * any way but `startInteractive` (src/exec/run.ts), or hold any decision
 * about what to open.
 */
import { createInterface } from 'node:readline';
import { NftError } from '../../errors/nft-error.js';
import { inNetns } from '../../exec/netns.js';
import { startInteractive } from '../../exec/run.js';
import { nftCheck } from '../checks.js';

/** How {@link NftSession} runs nft. */
export interface NftSessionOptions {
  /** Run nft inside this network namespace (tests, benchmarks); default the current one. */
  readonly netns?: string;
  /** A transaction not confirmed within this many ms ends the process (and fails). Default 10 000. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly marker: string;
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly lines: string[];
  timer?: NodeJS.Timeout;
}

/** The marker words: never valid nft, never inside a transaction line. */
const MARKER = /^ticrypt_sync_\d+$/;

/**
 * One `nft -i` process, started on first use and again after it died.
 *
 * @example
 * const session = new NftSession();
 * await session.run('add element inet ticrypt dns_p16 { 52:54:00:12:34:56 . 203.0.113.10 . tcp . 443 timeout 90s expires 90s }');
 * await session.close();
 */
export class NftSession {
  private child: ReturnType<typeof startInteractive>['subprocess'] | undefined;
  private readonly queue: Pending[] = [];
  private sequence = 0;
  /** After a marker's echo, nft prints a line of carets under it: skipped. */
  private skipCaret = false;

  private readonly netns: { readonly netns?: string };

  /** @throws {UsageError} `E_USAGE` when `options.netns` is not a namespace name. */
  constructor(private readonly options: NftSessionOptions = {}) {
    inNetns(options.netns, ['nft']);
    this.netns = options.netns === undefined ? {} : { netns: options.netns };
  }

  /**
   * Run one transaction: `line` holds its commands, separated by `;`, with no
   * newline. Resolves once nft has committed it; rejects with {@link NftError}
   * (nothing of it applied) when nft refuses it or the process dies, and with
   * `NftInputError` when `line` is not one line (nothing is sent).
   */
  run(line: string): Promise<void> {
    if (line.includes('\n') || line.includes('\r') || line.trim() === '' || MARKER.test(line.trim())) {
      return Promise.reject(nftCheck.refuse('transaction', 'one non-empty line of nft commands', line));
    }
    const child = this.start();
    return new Promise<void>((resolve, reject) => {
      this.sequence += 1;
      const pending: Pending = { marker: `ticrypt_sync_${this.sequence}`, line, resolve, reject, lines: [] };
      this.queue.push(pending);
      if (this.queue.length === 1) this.arm(pending);
      child.stdin.write(`${line}\n${pending.marker}\n`);
    });
  }

  /** End the process (pending transactions fail). */
  async close(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await child;
    clearTimeout(timer);
  }

  private start() {
    if (this.child !== undefined) return this.child;
    const { subprocess: child } = startInteractive('nft', ['-i'], this.netns);
    this.child = child;
    this.skipCaret = false;
    child.stdin.on('error', () => undefined); // the process died: its exit fails what is pending
    createInterface({ input: child.stderr }).on('line', (line) => this.onLine(line));
    void child.then((result) => {
      if (this.child === child) this.child = undefined;
      const detail = result.failed ? result.message : `exit ${String(result.exitCode)}`;
      this.failAll(`nft -i ended (${detail})`, result.exitCode, result.signal);
    });
    return child;
  }

  private onLine(line: string): void {
    if (this.skipCaret) {
      this.skipCaret = false;
      if (/^\s*\^+\s*$/.test(line)) return;
    }
    const head = this.queue[0];
    if (head === undefined) return;
    if (line !== head.marker) {
      head.lines.push(line);
      return;
    }
    this.skipCaret = true;
    // The line before the echo is nft's syntax error about the marker itself.
    if (head.lines.at(-1)?.startsWith('Error:')) head.lines.pop();
    this.queue.shift();
    clearTimeout(head.timer);
    const next = this.queue[0];
    if (next !== undefined) this.arm(next);
    if (head.lines.some((l) => l.startsWith('Error:'))) {
      head.reject(this.error(head.lines.join('\n'), head.line, { refused: true }));
    } else head.resolve();
  }

  /** The head of the queue must be confirmed within the timeout, or the process is ended. */
  private arm(pending: Pending): void {
    pending.timer = setTimeout(() => {
      pending.lines.push(`Error: no answer from nft -i in ${this.options.timeoutMs ?? 10_000} ms`);
      this.child?.kill('SIGKILL');
    }, this.options.timeoutMs ?? 10_000);
    pending.timer.unref();
  }

  /** The error of a transaction: refused while nft runs on, or failed because nft ended (how, if it did). */
  private error(
    stderr: string,
    line: string,
    how: { readonly refused?: boolean; readonly exitCode?: number | undefined; readonly signal?: string | undefined },
  ): NftError {
    return new NftError({
      exitCode: how.exitCode,
      signal: how.signal,
      stderr,
      script: line,
      command: ['nft', '-i'],
      action: 'applying a DNS transaction',
      ...(how.refused === true ? { refused: true } : {}),
      ...this.netns,
    });
  }

  private failAll(reason: string, exitCode: number | undefined, signal: string | undefined): void {
    const failed = this.queue.splice(0);
    for (const pending of failed) {
      clearTimeout(pending.timer);
      const stderr = [...pending.lines, reason].join('\n');
      pending.reject(this.error(stderr, pending.line, { exitCode, signal }));
    }
  }
}
