/**
 * A running `ping -i 0.01` from a lab namespace, counting the lost replies:
 * each reply's `icmp_seq` is recorded, so a loss is a sequence number with no
 * reply between the first and the last one answered (the request still in
 * flight when the ping is stopped is not counted as lost).
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Netns } from './netns.js';

/** What a ping run saw. */
export interface PingCount {
  /** Requests from the first to the last one answered. */
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  /** The longest run of consecutive losses, in requests. */
  readonly longestGap: number;
}

/** Count losses among `seqs` (answered sequence numbers, any order, duplicates allowed). */
export function countLosses(seqs: readonly number[]): PingCount {
  const answered = [...new Set(seqs)].sort((x, y) => x - y);
  if (answered.length === 0) return { sent: 0, received: 0, lost: 0, longestGap: 0 };
  let longestGap = 0;
  for (let i = 1; i < answered.length; i++) longestGap = Math.max(longestGap, answered[i]! - answered[i - 1]! - 1);
  const sent = answered.at(-1)! - answered[0]! + 1;
  return { sent, received: answered.length, lost: sent - answered.length, longestGap };
}

function spawnPing(ns: Netns, interval: string, address: string) {
  return execa('ip', ['netns', 'exec', ns.name, 'ping', '-n', '-i', interval, address], {
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
}

/** A ping every `intervalMs` (default 10) from `ns` to `address`, until {@link Pinger.stop}. */
export class Pinger {
  private readonly seqs: number[] = [];
  private constructor(private readonly child: ReturnType<typeof spawnPing>) {
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const seq = /icmp_seq=(\d+)/.exec(line)?.[1];
        if (seq !== undefined) this.seqs.push(Number(seq));
      });
    }
  }

  /** Start pinging and wait for the first reply (at most `ms`). */
  static async start(ns: Netns, address: string, intervalMs = 10, ms = 10_000): Promise<Pinger> {
    const interval = (intervalMs / 1000).toFixed(3);
    const pinger = new Pinger(spawnPing(ns, interval, address));
    const deadline = Date.now() + ms;
    while (pinger.seqs.length === 0) {
      if (Date.now() > deadline) {
        await pinger.stop();
        throw new Error(`ping from ${ns.name} to ${address}: no reply in ${ms} ms`);
      }
      await sleep(20);
    }
    return pinger;
  }

  /** The count so far. */
  count(): PingCount {
    return countLosses(this.seqs);
  }

  /** Replies received so far. */
  get replies(): number {
    return this.seqs.length;
  }

  /** Stop it (by its pid: `ip netns exec` execs ping in place) and return the count. */
  async stop(): Promise<PingCount> {
    this.child.kill('SIGINT');
    await this.child;
    return this.count();
  }
}
