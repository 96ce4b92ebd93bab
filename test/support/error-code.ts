/** How a promise settled: `'ok'`, or the `code` of the error it rejected with. */
export function settledCode(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => 'ok',
    (error: { code?: string }) => error.code,
  );
}
