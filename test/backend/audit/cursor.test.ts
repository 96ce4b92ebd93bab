import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CursorFile } from '../../../src/backend/audit/cursor.js';
import { settledCode } from '../../support/error-code.js';
import { tempStore } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
async function cursorPath() {
  const temp = await tempStore();
  cleanups.push(temp.cleanup);
  return join(temp.dir, 'state', 'flows.cursor');
}

describe('CursorFile', () => {
  it('loads nothing before the first save, then what was saved last', async () => {
    const cursor = new CursorFile(await cursorPath());
    expect(await cursor.load()).toBeUndefined();
    await cursor.save({ v: 1, file: '/var/log/ulogd/flows.json', inode: 42, offset: 1000 });
    await cursor.save({ v: 1, file: '/var/log/ulogd/flows.json', inode: 42, offset: 2000 });
    expect(await cursor.load()).toEqual({ v: 1, file: '/var/log/ulogd/flows.json', inode: 42, offset: 2000 });
    expect(await new CursorFile(cursor.path).load()).toEqual({
      v: 1,
      file: '/var/log/ulogd/flows.json',
      inode: 42,
      offset: 2000,
    });
  });

  it('leaves no temporary file beside it', async () => {
    const cursor = new CursorFile(await cursorPath());
    await cursor.save({ v: 1, file: 'f', offset: 1 });
    expect(await readdir(dirname(cursor.path))).toEqual(['flows.cursor']);
    expect(await readFile(cursor.path, 'utf8')).toBe('{"v":1,"file":"f","offset":1}\n');
  });

  it.each([
    ['not JSON', '{"v":1,"file":"f","off'],
    ['a negative offset', '{"v":1,"file":"f","offset":-1}'],
    ['another version', '{"v":2,"file":"f","offset":1}'],
    ['extra keys', '{"v":1,"file":"f","offset":1,"x":1}'],
  ])('refuses a cursor file holding %s with E_AUDIT_CURSOR', async (_name, text) => {
    const cursor = new CursorFile(await cursorPath());
    await cursor.save({ v: 1, file: 'f', offset: 1 });
    await writeFile(cursor.path, text);
    expect(await settledCode(cursor.load())).toBe('E_AUDIT_CURSOR');
    await expect(cursor.load()).rejects.toThrow(/^audit cursor .*flows\.cursor: expected/);
  });

  it('refuses to save a bad cursor, keeping the old one', async () => {
    const cursor = new CursorFile(await cursorPath());
    await cursor.save({ v: 1, file: 'f', offset: 1 });
    expect(await settledCode(cursor.save({ v: 1, file: 'f', offset: -5 }))).toBe('E_AUDIT_CURSOR');
    expect(await cursor.load()).toEqual({ v: 1, file: 'f', offset: 1 });
  });
});
