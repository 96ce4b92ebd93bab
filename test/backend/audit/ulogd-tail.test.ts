import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonlTail, rotatedPath } from '../../../src/backend/audit/ulogd-tail.js';

/** A writer as ulogd's JSON output is: appends whole lines to its open file; reopens the path when asked (SIGHUP). */
class Writer {
  private fd: number;
  next = 0;
  reopenAsked = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  write(n: number): void {
    for (let i = 0; i < n; i++) writeSync(this.fd, `${JSON.stringify({ n: this.next++, pad: 'x'.repeat(20) })}\n`);
  }

  reopen(): void {
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.reopenAsked = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

async function withDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ulogd-tail-'));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A reader as the service starts one (its persisted offset loaded; its loop run once and stopped: tests drain). */
async function tail(dir: string, writer: Writer, seen: number[], rotateBytes = 200, chunk = 4096): Promise<JsonlTail> {
  const reader = new JsonlTail({
    intervalMs: 1,
    file: join(dir, 'flows.json'),
    stateFile: join(dir, 'flows.offset'),
    rotateBytes,
    chunk,
    onBatch: async (lines) => {
      for (const line of lines) seen.push(line.n as number);
    },
    onRotate: () => {
      writer.reopenAsked += 1;
    },
  });
  await reader.start();
  await reader.stop();
  return reader;
}

describe('JsonlTail rotation', () => {
  it('renames the file past the threshold, reads the old file to its end, then the new one, each line once', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'flows.json');
      const writer = new Writer(file);
      const seen: number[] = [];
      const reader = await tail(dir, writer, seen);
      writer.write(10); // 10 lines of 37-38 bytes: past 200
      await reader.drain();
      expect(existsSync(rotatedPath(file))).toBe(true);
      expect(existsSync(file)).toBe(false);
      expect(writer.reopenAsked).toBe(1);
      // The writer still writes to the renamed file until it reopens.
      writer.write(3);
      await reader.drain();
      expect(seen).toEqual([...Array(13).keys()]);
      writer.reopen();
      writer.write(2);
      await reader.drain();
      expect(seen).toEqual([...Array(15).keys()]);
      expect(existsSync(rotatedPath(file))).toBe(false);
      const now = await stat(file);
      expect(JSON.parse(await readFile(join(dir, 'flows.offset'), 'utf8'))).toEqual({ ino: now.ino, offset: now.size });
      writer.close();
    });
  });

  it('asks the writer again (at most each second) while it has not reopened, e.g. after a restart', async () => {
    await withDir(async (dir) => {
      const writer = new Writer(join(dir, 'flows.json'));
      const seen: number[] = [];
      writer.write(10);
      await (await tail(dir, writer, seen)).drain();
      expect(writer.reopenAsked).toBe(1);
      // A new reader (the service restarted before ulogd got its SIGHUP) asks again.
      await (await tail(dir, writer, seen)).drain();
      expect(writer.reopenAsked).toBe(2);
      expect(seen).toEqual([...Array(10).keys()]);
      writer.close();
    });
  });

  it('takes a torn last line of the old file as malformed once the writer moved on', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'flows.json');
      const writer = new Writer(file);
      const seen: number[] = [];
      const malformed: string[] = [];
      writer.write(10);
      const reader = new JsonlTail({
        file,
        stateFile: join(dir, 'flows.offset'),
        rotateBytes: 200,
        onBatch: async (lines) => void seen.push(...lines.map((l) => l.n as number)),
        onMalformed: (line) => malformed.push(line),
        onRotate: () => undefined,
      });
      await reader.drain();
      const fd = openSync(rotatedPath(file), 'a');
      writeSync(fd, '{"n":9');
      closeSync(fd);
      writer.reopen();
      writer.write(1);
      await reader.drain();
      expect(malformed).toEqual(['{"n":9']);
      expect(seen).toEqual([...Array(11).keys()]);
      writer.close();
    });
  });

  it('never loses or repeats a line, whatever the order of writes, reads, reopens and restarts', async () => {
    type Action = { kind: 'write'; n: number } | { kind: 'read' } | { kind: 'reopen' } | { kind: 'restart' };
    const action = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), n: fc.integer({ min: 1, max: 12 }) }),
      fc.constant<Action>({ kind: 'read' }),
      fc.constant<Action>({ kind: 'reopen' }),
      fc.constant<Action>({ kind: 'restart' }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { maxLength: 40 }),
        fc.integer({ min: 40, max: 400 }),
        fc.integer({ min: 40, max: 300 }), // at least a line (37 bytes)
        async (actions, rotateBytes, chunk) =>
          withDir(async (dir) => {
            const writer = new Writer(join(dir, 'flows.json'));
            const seen: number[] = [];
            let reader = await tail(dir, writer, seen, rotateBytes, chunk);
            for (const a of actions) {
              if (a.kind === 'write') writer.write(a.n);
              else if (a.kind === 'read') await reader.drain();
              // ulogd reopens only when told to (a SIGHUP it got).
              else if (a.kind === 'reopen' && writer.reopenAsked > 0) writer.reopen();
              else if (a.kind === 'restart') reader = await tail(dir, writer, seen, rotateBytes, chunk);
            }
            // The end: the writer takes its last SIGHUP, the reader catches up.
            for (let i = 0; i < 4; i++) {
              await reader.drain();
              if (writer.reopenAsked > 0) writer.reopen();
            }
            await reader.drain();
            writer.close();
            expect(seen).toEqual([...Array(writer.next).keys()]);
          }),
      ),
      { numRuns: 150 },
    );
  });
});
