import { appendFile, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/backend/audit/day-store.js';
import { GENESIS, parseLine } from '../../../src/backend/audit/line.js';
import { verifyChain } from '../../../src/backend/audit/verify.js';
import { settledCode } from '../../support/error-code.js';
import { clock, flow, tempStore } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(overrides: Parameters<typeof tempStore>[0] = {}) {
  const temp = await tempStore(overrides);
  cleanups.push(temp.cleanup);
  return temp;
}

const lines = async (path: string) => (await readFile(path, 'utf8')).trimEnd().split('\n');

describe('AuditStore', () => {
  it('appends batches as chained lines in the day file, and continues the chain after a reopen', async () => {
    const { dir, settings } = await setup();
    const time = clock('2026-12-01T10:00:00Z');
    const store = await AuditStore.open({ settings, now: time.now });
    await store.append([flow(1), flow(2)]);
    await store.append([flow(3)]);
    expect(store.stats).toMatchObject({ records: 3, batches: 2, fsyncs: 2 });
    await store.close();
    const again = await AuditStore.open({ settings, now: time.now });
    expect(again.opened).toEqual({ torn: undefined, head: store.head });
    await again.append([flow(4)]);
    await again.close();
    expect(await readdir(dir)).toEqual(['audit-2026-12-01.jsonl']);
    const stored = (await lines(join(dir, 'audit-2026-12-01.jsonl'))).map((l) => parseLine(l));
    expect(stored.map((l) => l?.seq)).toEqual([1, 2, 3, 4]);
    expect(stored[0]?.prev).toBe(GENESIS);
    expect(stored.map((l) => l?.rec)).toEqual([flow(1), flow(2), flow(3), flow(4)]);
    expect(await verifyChain(dir)).toMatchObject({ lines: 4, anchor: 'genesis', break: undefined });
  });

  it('starts a new file each UTC day, the first line chained to the last of the day before', async () => {
    const { dir, settings } = await setup();
    const time = clock('2026-12-01T23:59:59Z');
    const store = await AuditStore.open({ settings, now: time.now });
    await store.append([flow(1)]);
    time.set('2026-12-02T00:00:01Z');
    await store.append([flow(2)]);
    await store.close();
    expect((await readdir(dir)).sort()).toEqual(['audit-2026-12-01.jsonl', 'audit-2026-12-02.jsonl']);
    expect(await verifyChain(dir)).toMatchObject({
      lines: 2,
      files: ['audit-2026-12-01.jsonl', 'audit-2026-12-02.jsonl'],
    });
    expect(await verifyChain(dir, { sinceDay: '2026-12-02' })).toMatchObject({ lines: 1, anchor: 'previous-file' });
  });

  it('rotates within a day into -N parts past rotateBytes, whole batches only', async () => {
    const { dir, settings } = await setup({ rotateBytes: 4096 });
    const store = await AuditStore.open({ settings, now: clock('2026-12-01T10:00:00Z').now });
    for (let i = 0; i < 30; i += 1) await store.append([flow(i), flow(i + 100)]);
    await store.close();
    const names = (await readdir(dir)).sort();
    expect(names.length).toBeGreaterThan(3);
    expect(names).toContain('audit-2026-12-01-1.jsonl');
    for (const name of names) {
      const text = await readFile(join(dir, name), 'utf8');
      expect(text.length).toBeLessThanOrEqual(4096);
      expect(text.endsWith('\n')).toBe(true);
    }
    expect(await verifyChain(dir)).toMatchObject({ lines: 60, break: undefined });
  });

  it('with fsyncIntervalMs, batches share an fsync and still resolve only once synced', async () => {
    const { settings } = await setup({ fsyncIntervalMs: 50 });
    const store = await AuditStore.open({ settings });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.append([flow(i)])));
    expect(store.stats.batches).toBe(20);
    expect(store.stats.fsyncs).toBeLessThan(5);
    expect(store.stats.fsyncs).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it('reports a torn tail at open, leaves it, and continues in a new part that records it', async () => {
    const { dir, settings } = await setup();
    const time = clock('2026-12-01T10:00:00Z');
    const store = await AuditStore.open({ settings, now: time.now });
    await store.append([flow(1), flow(2)]);
    await store.close();
    const path = join(dir, 'audit-2026-12-01.jsonl');
    const before = await readFile(path);
    const torn = '{"seq":3,"at":"2026-12-01T10:00:00.000Z","prev":"ab';
    await appendFile(path, torn);
    // Before the store reopens, verify reports the torn tail as a break.
    expect((await verifyChain(dir)).break).toMatchObject({ file: 'audit-2026-12-01.jsonl', line: 3 });

    const again = await AuditStore.open({ settings, now: time.now });
    expect(again.opened.torn).toEqual({
      v: 1,
      kind: 'torn',
      file: 'audit-2026-12-01.jsonl',
      validBytes: before.length,
      tornBytes: torn.length,
    });
    await again.append([flow(3)]);
    await again.close();
    expect((await readFile(path)).subarray(0, before.length)).toEqual(before);
    const next = (await lines(join(dir, 'audit-2026-12-01-1.jsonl'))).map((l) => parseLine(l));
    expect(next.map((l) => [l?.seq, l?.rec.kind])).toEqual([
      [3, 'torn'],
      [4, 'flow'],
    ]);
    const report = await verifyChain(dir);
    expect(report).toMatchObject({ lines: 4, break: undefined });
    expect(report.torn).toHaveLength(1);
  });

  it('treats zero bytes after the last line (a crashed filesystem) as a torn tail', async () => {
    const { dir, settings } = await setup();
    const store = await AuditStore.open({ settings, now: clock('2026-12-01T10:00:00Z').now });
    await store.append([flow(1)]);
    await store.close();
    await appendFile(join(dir, 'audit-2026-12-01.jsonl'), Buffer.alloc(4096));
    const again = await AuditStore.open({ settings, now: clock('2026-12-01T11:00:00Z').now });
    expect(again.opened.torn?.tornBytes).toBe(4096);
    await again.close();
    expect((await verifyChain(dir)).break).toBeUndefined();
  });

  it('removes whole old files by age, records the removal in the chain first, and verify accepts the gap', async () => {
    const { dir, settings } = await setup({ retainDays: 2 });
    const time = clock('2026-11-27T10:00:00Z');
    const store = await AuditStore.open({ settings, now: time.now });
    for (const day of ['2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30', '2026-12-01']) {
      time.set(`${day}T10:00:00Z`);
      await store.append([flow(1, `${day}T10:00:00.000000Z`)]);
    }
    await store.close();
    expect((await readdir(dir)).sort()).toEqual([
      'audit-2026-11-29.jsonl',
      'audit-2026-11-30.jsonl',
      'audit-2026-12-01.jsonl',
    ]);
    expect(store.stats.filesRemoved).toBe(2);
    const report = await verifyChain(dir);
    expect(report).toMatchObject({ anchor: 'retention', break: undefined });
    expect(report.removed.map((r) => r.file)).toEqual(['audit-2026-11-27.jsonl', 'audit-2026-11-28.jsonl']);
    // Each removal is the first line of the file whose start triggered it.
    for (const [day, removed] of [
      ['2026-11-30', 'audit-2026-11-27.jsonl'],
      ['2026-12-01', 'audit-2026-11-28.jsonl'],
    ] as const) {
      const first = parseLine((await lines(join(dir, `audit-${day}.jsonl`)))[0] ?? '')?.rec;
      expect(first).toMatchObject({ kind: 'retention', reason: 'age', removed: [{ file: removed }] });
    }
  });

  it('removes the oldest files by size, never the current one', async () => {
    const { dir, settings } = await setup({ maxTotalBytes: 1024 * 1024 });
    const time = clock('2026-11-27T10:00:00Z');
    const store = await AuditStore.open({ settings, now: time.now });
    const big = Array.from({ length: 800 }, (_, i) => flow(i));
    for (const day of ['2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30']) {
      time.set(`${day}T10:00:00Z`);
      await store.append(big);
    }
    await store.close();
    const remaining = await readdir(dir);
    expect(remaining).toContain('audit-2026-11-30.jsonl');
    expect(remaining).not.toContain('audit-2026-11-27.jsonl');
    const report = await verifyChain(dir);
    expect(report).toMatchObject({ anchor: 'retention', break: undefined });
    expect(report.removed.length).toBeGreaterThan(0);
  });

  it('shows an old file removed without a retention record as a break', async () => {
    const { dir, settings } = await setup();
    const time = clock('2026-11-30T10:00:00Z');
    const store = await AuditStore.open({ settings, now: time.now });
    await store.append([flow(1)]);
    time.set('2026-12-01T10:00:00Z');
    await store.append([flow(2)]);
    await store.close();
    await unlink(join(dir, 'audit-2026-11-30.jsonl'));
    expect((await verifyChain(dir)).break).toMatchObject({
      file: 'audit-2026-12-01.jsonl',
      line: 1,
      detail: expect.stringMatching(/no retention event records its removal/),
    });
  });

  it('never appends to a file it did not open: a stray next part stops the write with E_AUDIT_STORE', async () => {
    const { dir, settings } = await setup({ rotateBytes: 4096 });
    const store = await AuditStore.open({ settings, now: clock('2026-12-01T10:00:00Z').now });
    await store.append([flow(1)]);
    await writeFile(join(dir, 'audit-2026-12-01-1.jsonl'), 'planted\n');
    const many = Array.from({ length: 20 }, (_, i) => flow(i));
    expect(await settledCode(store.append(many))).toBe('E_AUDIT_STORE');
    expect(await readFile(join(dir, 'audit-2026-12-01-1.jsonl'), 'utf8')).toBe('planted\n');
    await store.close();
    expect(await settledCode(store.append([flow(2)]))).toBe('E_AUDIT_STORE');
  });

  it('after a failed write, the next append finds the head again and the chain stays whole', async () => {
    const { dir, settings } = await setup();
    const store = await AuditStore.open({ settings, now: clock('2026-12-01T10:00:00Z').now });
    await store.append([flow(1)]);
    // Pull the file handle from under the store: its next write fails (EBADF).
    await (store as unknown as { current: { handle: { close(): Promise<void> } } }).current.handle.close();
    expect(await settledCode(store.append([flow(2)]))).toBe('E_AUDIT_STORE');
    await store.append([flow(3)]);
    await store.close();
    const report = await verifyChain(dir);
    expect(report).toMatchObject({ lines: 2, break: undefined });
  });

  it('fails with E_AUDIT_STORE when the directory cannot be made', async () => {
    const { dir, settings } = await setup();
    await writeFile(join(dir, '..', 'file'), 'x');
    expect(
      await settledCode(AuditStore.open({ settings: { ...settings, dir: join(dir, '..', 'file', 'audit') } })),
    ).toBe('E_AUDIT_STORE');
  });
});
