/**
 * The host side of the guest's command channel: a virtio-serial port whose
 * guest end `tn-agent` (rootfs/bin/tn-agent) reads, and whose host end is a
 * unix socket QEMU listens on. One request line per command, one answer line
 * back, in order:
 *
 *     host → guest   ID SECONDS BASE64(script)
 *     guest → host   ID EXIT BASE64(stdout) BASE64(stderr)
 *
 * Requests written before the guest opens its end wait in the socket (QEMU
 * reads only when the guest has buffers), so the first command may be sent
 * right after `virsh create`. The socket is never half-closed: a host end
 * that half-closes blocks the guest's writes (LAB.md).
 */
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a command run in the guest gave. */
export interface GuestRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
  /** The guest's `timeout` ended it (exit 143 after at least its time). */
  readonly timedOut: boolean;
}

interface Pending {
  readonly started: number;
  readonly seconds: number;
  readonly resolve: (run: GuestRun) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Extra time the host allows beyond the guest's own timeout: TCG is slow, and requests queue. */
const SLACK_MS = 15_000;

/** A connected command channel to one guest. */
export class CommandChannel {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private broken: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly label: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (error) => this.fail(new Error(`command channel of ${label}: ${error.message}`)));
    socket.on('close', () => this.fail(new Error(`command channel of ${label} closed`)));
  }

  /** Connect to QEMU's socket at `path`, retrying for up to `ms` while it does not exist yet. */
  static async connect(path: string, label: string, ms = 10_000): Promise<CommandChannel> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path, () => resolve(s));
          s.once('error', reject);
        });
        return new CommandChannel(socket, label);
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`command channel of ${label}: cannot connect to ${path}: ${(error as Error).message}`);
        }
        await sleep(100);
      }
    }
  }

  /**
   * Run `script` with `sh` in the guest, ended there after `seconds`; the host
   * gives up (rejects) if no answer comes within `seconds` plus a slack.
   */
  run(script: string, seconds: number): Promise<GuestRun> {
    if (this.broken) return Promise.reject(this.broken);
    if (!Number.isInteger(seconds) || seconds < 1) {
      return Promise.reject(new Error(`guest command timeout: expected whole seconds >= 1, found ${seconds}`));
    }
    const id = this.nextId++;
    return new Promise<GuestRun>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          reject(new Error(`no answer from ${this.label} within ${seconds} s + slack to: ${firstLine(script)}`));
        },
        seconds * 1000 + SLACK_MS,
      );
      this.pending.set(id, { started: Date.now(), seconds, resolve, reject, timer });
      this.socket.write(`${id} ${seconds} ${Buffer.from(script).toString('base64')}\n`);
    });
  }

  /** Drop the connection (the guest is going away). Pending commands are rejected. */
  close(): void {
    this.fail(new Error(`command channel of ${this.label} closed by the test`));
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      const [id, exit, out = '', err = ''] = line.split(' ');
      const pending = this.pending.get(Number(id));
      if (pending === undefined) continue;
      this.pending.delete(Number(id));
      clearTimeout(pending.timer);
      const exitCode = Number(exit);
      pending.resolve({
        stdout: Buffer.from(out, 'base64').toString('utf8'),
        stderr: Buffer.from(err, 'base64').toString('utf8'),
        exitCode,
        timedOut: exitCode === 143 && Date.now() - pending.started >= pending.seconds * 1000,
      });
    }
  }

  private fail(error: Error): void {
    this.broken ??= error;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}

function firstLine(script: string): string {
  const line = script.trim().split('\n')[0] ?? '';
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}
