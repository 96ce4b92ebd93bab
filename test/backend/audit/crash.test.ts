import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/backend/audit/day-store.js';
import { queryAudit } from '../../../src/backend/audit/query.js';
import { verifyChain } from '../../../src/backend/audit/verify.js';
import { tempStore } from './support.js';

const child = new URL('./fixtures/append-child.ts', import.meta.url).pathname;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Run the producer from record `from`, SIGKILL it once `killAfter` records were acknowledged; the last ack. */
function runAndKill(dir: string, from: number, killAfter: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const producer = spawn(process.execPath, ['--import', 'tsx', child, dir, String(from)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = from;
    createInterface({ input: producer.stdout }).on('line', (line) => {
      acked = Number(line.slice(4));
      if (acked >= from + killAfter) producer.kill('SIGKILL');
    });
    producer.on('error', reject);
    producer.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`producer exited ${code}`)),
    );
  });
}

describe('audit store: killed mid-burst', () => {
  it('keeps every acknowledged record, and its chain whole, across two kill -9s', async () => {
    const temp = await tempStore();
    cleanups.push(temp.cleanup);
    const first = await runAndKill(temp.dir, 0, 3000);
    const second = await runAndKill(temp.dir, first, 3000);
    const store = await AuditStore.open({ settings: temp.settings });
    await store.close();
    const report = await verifyChain(temp.dir);
    expect(report.break).toBeUndefined();
    expect(report.files.length).toBeGreaterThan(3);
    const counters: number[] = [];
    for await (const hit of queryAudit(temp.dir, {})) {
      if (hit.stored.rec.kind === 'flow') counters.push(hit.stored.rec.bytes.out);
    }
    // Every acknowledged record is there; the second run continued after the first's acknowledged ones
    // (records written but not acknowledged before a kill may appear once more: at least once, never lost).
    for (const n of [1, first, first + 1, second]) expect(counters).toContain(n);
    expect(new Set(counters).size).toBeGreaterThanOrEqual(second);
  });
});
