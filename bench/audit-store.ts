/**
 * What the audit store costs: records appended per second (one write and one
 * fdatasync per batch, or batches sharing an fsync every 50 ms), and how
 * fast `audit query` and `audit verify` read the day files back.
 * No lab stack: files only, on the disk of AUDIT_BENCH_DIR (default: the OS
 * temporary directory).
 *
 *     npm run bench:audit-store [RECORDS]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sizedDayFiles, AuditStore } from '../src/backend/audit/day-store.js';
import { queryAudit } from '../src/backend/audit/query.js';
import type { AuditRecord } from '../src/backend/audit/record.js';
import { verifyChain } from '../src/backend/audit/verify.js';
import { DEFAULT_AUDIT_STORE } from '../src/site/audit-store.js';
import { flow, vmUuid } from '../test/backend/audit/support.js';

const RECORDS = Number(process.argv[2] ?? 200_000);
const VMS = 100;
const root = await mkdtemp(join(process.env.AUDIT_BENCH_DIR ?? tmpdir(), 'audit-bench-'));

/** Record i: VM i % VMS, its own source port and byte counts. */
const record = (i: number): AuditRecord =>
  flow(i % VMS, '2026-12-01T10:00:00.654321Z', 0, {
    src: { ip: '192.168.129.10', port: 30000 + (i % 30000) },
    start: '2026-12-01T09:59:58.123456Z',
    bytes: { out: 1000 + i, in: 50000 + i },
    packets: { out: 10, in: 40 },
  });
const all = Array.from({ length: RECORDS }, (_, i) => record(i));

async function appendRun(name: string, batch: number, fsyncIntervalMs: number, concurrent: number, count = RECORDS) {
  const dir = join(root, name);
  const records = all.slice(0, count);
  const store = await AuditStore.open({ settings: { ...DEFAULT_AUDIT_STORE, dir, fsyncIntervalMs } });
  const started = performance.now();
  const batches: AuditRecord[][] = [];
  for (let i = 0; i < records.length; i += batch) batches.push(records.slice(i, i + batch));
  // `concurrent` producers: with an fsync interval, their batches share fsyncs.
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrent }, async () => {
      while (next < batches.length) await store.append(batches[(next += 1) - 1] as AuditRecord[]);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  const bytes = (await sizedDayFiles(dir)).reduce((s, f) => s + f.bytes, 0);
  const rate = count / seconds;
  console.log(
    `append  ${name.padEnd(34)} ${Math.round(rate).toLocaleString('en').padStart(9)} records/s  ${(bytes / seconds / 2 ** 20).toFixed(1).padStart(6)} MiB/s  ${store.stats.fsyncs} fsyncs`,
  );
  return { dir, rate, bytes };
}

try {
  console.log(`audit store bench: ${RECORDS.toLocaleString('en')} flow records of ${VMS} VMs, dir ${root}`);
  // Small batches (a reader under light load): one fsync each, versus 16 producers sharing an fsync every 20 ms.
  const one = await appendRun('batch 1, fsync each', 1, 0, 1, 2000);
  const shared = await appendRun('batch 1 x16 producers, fsync 20 ms', 1, 20, 16, 2000);
  console.log(`        shared fsync / fsync each at batch 1: ${(shared.rate / one.rate).toFixed(2)}x`);
  const small = await appendRun('batch 100, fsync each', 100, 0, 1);
  const big = await appendRun('batch 1000, fsync each', 1000, 0, 1);
  const lineBytes = big.bytes / RECORDS;
  console.log(
    `        ${lineBytes.toFixed(0)} bytes per stored line; batch 1000 / batch 100: ${(big.rate / small.rate).toFixed(2)}x`,
  );

  const mib = big.bytes / 2 ** 20;
  let started = performance.now();
  let hits = 0;
  for await (const hit of queryAudit(big.dir, { vm: vmUuid(7) })) if (hit) hits += 1;
  let seconds = (performance.now() - started) / 1000;
  console.log(
    `query   one VM of ${VMS} (${hits} hits)            ${Math.round(RECORDS / seconds)
      .toLocaleString('en')
      .padStart(9)} records scanned/s  ${(mib / seconds).toFixed(0)} MiB/s`,
  );

  started = performance.now();
  hits = 0;
  for await (const hit of queryAudit(big.dir, {})) if (hit) hits += 1;
  seconds = (performance.now() - started) / 1000;
  console.log(
    `query   all records (${hits} parsed)           ${Math.round(RECORDS / seconds)
      .toLocaleString('en')
      .padStart(9)} records/s  ${(mib / seconds).toFixed(0)} MiB/s`,
  );

  started = performance.now();
  const report = await verifyChain(big.dir);
  seconds = (performance.now() - started) / 1000;
  console.log(
    `verify  ${report.lines} lines, ${report.break === undefined ? 'whole' : 'BROKEN'}                ${Math.round(
      report.lines / seconds,
    )
      .toLocaleString('en')
      .padStart(9)} lines/s  ${(mib / seconds).toFixed(0)} MiB/s`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
