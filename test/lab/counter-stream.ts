/**
 * A process whose stdout is a counter, one number a line (a guest's `echo $i`
 * loop over SSH, or the server end of a guest's connection): each line is
 * recorded with its arrival time, so a test sees whether the stream went on
 * through an event, without a restart (the numbers stay consecutive) and
 * without the connection closing (the process still runs).
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

/** The shell loop that prints a counter every 100 ms (busybox sh in the guest). */
export const COUNTER_LOOP = 'i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done';

function spawnCounter(program: string, args: readonly string[]) {
  return execa(program, args, { reject: false, buffer: false, stdin: 'ignore' });
}

/** A running counter stream. */
export class CounterStream {
  /** Every value received, with `Date.now()` at its arrival. */
  readonly values: { readonly value: number; readonly at: number }[] = [];
  exitCode: number | undefined;
  stderr = '';
  private readonly child: ReturnType<typeof spawnCounter>;

  constructor(
    readonly label: string,
    program: string,
    args: readonly string[],
  ) {
    this.child = spawnCounter(program, args);
    if (this.child.stdout) {
      createInterface({ input: this.child.stdout }).on('line', (line) => {
        if (/^\d+$/.test(line.trim())) this.values.push({ value: Number(line.trim()), at: Date.now() });
      });
    }
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    void this.child.then((result) => (this.exitCode = result.exitCode ?? -1));
  }

  /** The last value received (-1 before the first). */
  get last(): number {
    return this.values.at(-1)?.value ?? -1;
  }

  /** Wait until `count` more values arrived than now (at most `ms`); whether they did. */
  async advances(count = 5, ms = 15_000): Promise<boolean> {
    const target = this.values.length + count;
    const deadline = Date.now() + ms;
    while (this.values.length < target && Date.now() < deadline && this.exitCode === undefined) await sleep(25);
    return this.values.length >= target;
  }

  /** Whether the values so far are consecutive from the first (no restart, nothing lost). */
  consecutive(): boolean {
    return this.values.every((v, i) => i === 0 || v.value === this.values[i - 1]!.value + 1);
  }

  /** The longest time between two values, in ms, from `since` on. */
  longestGapMs(since = 0): number {
    let gap = 0;
    for (let i = 1; i < this.values.length; i++) {
      if (this.values[i]!.at >= since) gap = Math.max(gap, this.values[i]!.at - this.values[i - 1]!.at);
    }
    return gap;
  }

  /** Kill it (by its pid) and wait. */
  async stop(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.child;
  }
}
