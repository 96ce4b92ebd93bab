import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/backend/audit/day-store.js';
import { queryAudit } from '../../../src/backend/audit/query.js';
import { clock, flow, tempStore, vmUuid } from './support.js';

let temp: Awaited<ReturnType<typeof tempStore>>;
beforeAll(async () => {
  temp = await tempStore({ retainDays: 3 });
  const time = clock('2026-11-28T10:00:00Z');
  const store = await AuditStore.open({ settings: temp.settings, now: time.now });
  for (const day of ['2026-11-28', '2026-11-29', '2026-11-30', '2026-12-01']) {
    time.set(`${day}T10:00:00Z`);
    await store.append([flow(1, `${day}T10:00:00.123456Z`), flow(2, `${day}T10:00:00.123456Z`)]);
  }
  // A flow that began the day before its end, written on the day after.
  time.set('2026-12-02T00:10:00Z');
  await store.append([{ ...flow(1, '2026-12-02T00:05:00.000000Z'), start: '2026-11-29T22:00:00.000000Z' }]);
  await store.close();
  await appendFile(join(temp.dir, 'audit-2026-12-02.jsonl'), '{"torn');
});
afterAll(() => temp.cleanup());

const collect = async (query: Parameters<typeof queryAudit>[1]) => {
  const hits = [];
  for await (const hit of queryAudit(temp.dir, query)) hits.push(hit);
  return hits;
};

describe('audit query', () => {
  it("returns one VM's records overlapping the range, in order, skipping a torn tail", async () => {
    const hits = await collect({ vm: vmUuid(1), since: new Date('2026-11-30T00:00:00Z') });
    expect(hits.map((h) => [h.file, h.stored.rec.kind, (h.stored.rec as { end: string }).end])).toEqual([
      ['audit-2026-11-30.jsonl', 'flow', '2026-11-30T10:00:00.123456Z'],
      ['audit-2026-12-01.jsonl', 'flow', '2026-12-01T10:00:00.123456Z'],
      ['audit-2026-12-02.jsonl', 'flow', '2026-12-02T00:05:00.000000Z'],
    ]);
    expect(JSON.parse(hits[0]!.text)).toEqual(hits[0]!.stored);
  });

  it('finds a long flow by its start, in a later file than the range', async () => {
    const hits = await collect({
      vm: vmUuid(1),
      since: new Date('2026-11-29T23:00:00Z'),
      until: new Date('2026-11-29T23:30:00Z'),
    });
    expect(hits.map((h) => (h.stored.rec as { start: string }).start)).toEqual(['2026-11-29T22:00:00.000000Z']);
  });

  it("without --vm, includes the store's own events (retention)", async () => {
    const kinds = (await collect({})).map((h) => h.stored.rec.kind);
    expect(kinds).toContain('retention');
    expect(kinds.filter((k) => k === 'flow')).toHaveLength(7);
  });

  it('finds nothing for an unknown VM', async () => {
    expect(await collect({ vm: vmUuid(99) })).toEqual([]);
  });
});
