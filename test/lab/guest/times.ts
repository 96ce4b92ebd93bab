/** `N boot(s), boot to lease median X s (min A s, max B s)` for boot-to-lease times in ms. */
export function describeTimes(ms: readonly number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const s = (v: number) => (v / 1000).toFixed(1);
  return `${sorted.length} boot(s), boot to lease median ${s(median)} s (min ${s(sorted[0]!)} s, max ${s(sorted.at(-1)!)} s)`;
}
