import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayFilesOf } from '../../../src/backend/audit/day-files.js';
import { AuditStore } from '../../../src/backend/audit/day-store.js';
import { verifyChain } from '../../../src/backend/audit/verify.js';
import { clock, flow, tempStore } from './support.js';

// One chain over three days and four files, written once; each case edits copies of it.
let pristine: { name: string; lines: string[] }[] = [];
let head = { seq: 0, hash: '' };
let work: Awaited<ReturnType<typeof tempStore>>;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const source = await tempStore({ rotateBytes: 4096 });
  cleanups.push(source.cleanup);
  const time = clock('2026-11-29T10:00:00Z');
  const store = await AuditStore.open({ settings: source.settings, now: time.now });
  let n = 0;
  for (const day of ['2026-11-29', '2026-11-30', '2026-12-01']) {
    time.set(`${day}T10:00:00Z`);
    for (let batch = 0; batch < 4; batch += 1) {
      await store.append([flow((n += 1)), flow((n += 1)), flow((n += 1))]);
    }
  }
  head = store.head;
  await store.close();
  const names = dayFilesOf(await readdir(source.dir)).map((f) => f.name);
  pristine = await Promise.all(
    names.map(async (name) => ({
      name,
      lines: (await readFile(join(source.dir, name), 'utf8')).trimEnd().split('\n'),
    })),
  );
  work = await tempStore();
  cleanups.push(work.cleanup);
});
afterAll(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Write the chain with `lines` as the flattened line list, split back into the same files by count. */
async function writeChain(lines: string[]): Promise<void> {
  const { mkdir, rm } = await import('node:fs/promises');
  await rm(work.dir, { recursive: true, force: true });
  await mkdir(work.dir, { recursive: true });
  let at = 0;
  for (const [index, file] of pristine.entries()) {
    const count = index === pristine.length - 1 ? lines.length - at : file.lines.length;
    const part = lines.slice(at, at + count);
    at += count;
    await writeFile(join(work.dir, file.name), part.length === 0 ? '' : `${part.join('\n')}\n`);
  }
}

const flat = () => pristine.flatMap((f) => f.lines);

describe('audit verify', () => {
  it('the written chain spans several files and verifies whole (positive control)', async () => {
    expect(pristine.length).toBeGreaterThanOrEqual(4);
    await writeChain(flat());
    expect(await verifyChain(work.dir, { anchors: [head] })).toMatchObject({
      lines: 36,
      anchor: 'genesis',
      break: undefined,
    });
  });

  it('names the file and line of an edit', async () => {
    const lines = flat();
    const target = pristine[0]!.lines.length + 2; // the third line of the second file
    lines[target] = lines[target]!.replace('"out":1000', '"out":1');
    await writeChain(lines);
    expect((await verifyChain(work.dir)).break).toEqual({
      file: pristine[1]!.name,
      line: 4,
      detail: expect.stringMatching(/^prev expected [0-9a-f]{64}, found [0-9a-f]{64}$/),
    });
  });

  it('detects a cut-off newest line only against a published head', async () => {
    await writeChain(flat().slice(0, -1));
    expect((await verifyChain(work.dir)).break).toBeUndefined();
    expect((await verifyChain(work.dir, { anchors: [head] })).break?.detail).toMatch(
      /the chain ends at seq 35, before the published seq 36/,
    );
    // A seq alone (as /metrics publishes it) shows the cut too.
    expect((await verifyChain(work.dir, { anchors: [{ seq: head.seq }] })).break?.detail).toMatch(
      /before the published seq 36/,
    );
  });

  it('property: any single-line edit, delete or swap breaks the chain (against the published head)', async () => {
    const original = flat();
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant('edit' as const),
        at: fc.nat(original.length - 1),
        pos: fc.nat(400),
        char: fc.constantFrom('0', '9', 'a', 'x', ' ', '"', '}'),
      }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(original.length - 1) }),
      fc.record({
        op: fc.constant('swap' as const),
        at: fc.nat(original.length - 1),
        with: fc.nat(original.length - 1),
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const lines = [...original];
        if (m.op === 'edit') {
          const line = lines[m.at]!;
          const pos = m.pos % line.length;
          fc.pre(line[pos] !== m.char);
          lines[m.at] = line.slice(0, pos) + m.char + line.slice(pos + 1);
        } else if (m.op === 'delete') {
          lines.splice(m.at, 1);
        } else {
          fc.pre(m.at !== m.with);
          [lines[m.at], lines[m.with]] = [lines[m.with]!, lines[m.at]!];
        }
        await writeChain(lines);
        const report = await verifyChain(work.dir, { anchors: [head] });
        expect(report.break).toBeDefined();
      }),
      { numRuns: 150 },
    );
  });

  it('property: without a published head, every change before the newest line still shows', async () => {
    const original = flat();
    await fc.assert(
      fc.asyncProperty(fc.nat(original.length - 2), fc.boolean(), async (at, remove) => {
        const lines = [...original];
        if (remove) lines.splice(at, 1);
        else lines[at] = lines[at]!.replace('"proto":"tcp"', '"proto":"udp"');
        await writeChain(lines);
        expect((await verifyChain(work.dir)).break).toBeDefined();
      }),
      { numRuns: 60 },
    );
  });
});
