import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { describeTimes } from '../lab/guest/times.js';

/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after
 * vitest's own summary, so any CI reads the count the same way; before it, the
 * run's lab guest boots (`guests: N boot(s), boot to lease median ...`), which
 * the test workers append to the file this reporter names in
 * `TICRYPT_GUEST_BOOTS` (set before they start, so they inherit it).
 */
export default class SummaryReporter implements Reporter {
  private readonly bootsDir = mkdtempSync(join(tmpdir(), 'ticrypt-guest-boots-'));

  onInit(): void {
    process.env.TICRYPT_GUEST_BOOTS = join(this.bootsDir, 'boots.jsonl');
  }

  onTestRunEnd(testModules: readonly TestModule[]): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    const boots = readFileSync(join(this.bootsDir, 'boots.jsonl'), { encoding: 'utf8', flag: 'a+' })
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { leaseMs: number }).leaseMs);
    rmSync(this.bootsDir, { recursive: true, force: true });
    if (boots.length > 0) process.stdout.write(`\nlab guests: ${describeTimes(boots)}\n`);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
