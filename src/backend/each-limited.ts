/**
 * Run `task` on every item, at most `limit` at a time, in item order. Rejects
 * with the first failure; no item is started after it (those already running finish).
 *
 * @example
 * await eachLimited(filters, 4, (filter) => conntrack(filter));
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next] as T;
      next += 1;
      await task(item).catch((error: unknown) => {
        failed = true;
        throw error;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
