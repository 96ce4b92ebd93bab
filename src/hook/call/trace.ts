/**
 * Phase timings of a hook run on stderr, for `bench/hook.ts` only
 * (`TICRYPT_NET_HOOK_TRACE=1`). May not: write anything when tracing is off.
 */
import { writeSync } from 'node:fs';

/** Whether `TICRYPT_NET_HOOK_TRACE=1` asks for phase timings on stderr (bench/hook.ts uses it). */
const enabled = process.env.TICRYPT_NET_HOOK_TRACE === '1';

/** Write `trace <label> <ms since process start>` to stderr when tracing is on; otherwise nothing. */
export function trace(label: string): void {
  if (enabled) writeSync(2, `trace ${label} ${performance.now().toFixed(2)}\n`);
}
