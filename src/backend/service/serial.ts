/**
 * Run async tasks one at a time, in call order. Every change to the store and
 * the firewall goes through one, so the kernel sees changes in the order the
 * store commits them.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Queue `task`; resolves or rejects with its result once it has run. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
