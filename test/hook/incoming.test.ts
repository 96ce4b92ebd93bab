/** The destination's note of an incoming migration: what counts, what does not. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  clearIncoming,
  INCOMING_MAX_AGE_MS,
  incomingDir,
  isIncoming,
  noteIncoming,
} from '../../src/hook/agent/incoming.js';

const UUID = '0b1d2c3e-0000-4000-8000-000000000031';
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tn-incoming-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('incoming-migration notes', () => {
  it('counts a note of this boot for a day, and no more once cleared', () => {
    expect(isIncoming(dir, UUID)).toBe(false);
    noteIncoming(dir, UUID, 1_000);
    expect(isIncoming(dir, UUID, 1_000 + INCOMING_MAX_AGE_MS - 1)).toBe(true);
    expect(isIncoming(dir, UUID, 1_000 + INCOMING_MAX_AGE_MS)).toBe(false);
    expect(isIncoming(dir, UUID, 999)).toBe(false); // a clock stepped back before the note
    clearIncoming(dir, UUID);
    expect(isIncoming(dir, UUID, 1_000)).toBe(false);
    clearIncoming(dir, UUID); // twice: harmless
  });

  it('ignores a note from another boot (the host crashed mid-migration) and a torn one', () => {
    noteIncoming(dir, UUID, 5_000);
    const file = join(incomingDir(dir), UUID);
    const [, at] = readFileSync(file, 'utf8').trim().split(' ');
    writeFileSync(file, `00000000-0000-0000-0000-000000000000 ${at}\n`);
    expect(isIncoming(dir, UUID, 5_000)).toBe(false);
    writeFileSync(file, 'garbage');
    expect(isIncoming(dir, UUID, 5_000)).toBe(false);
  });

  it('names files only by a well-formed UUID (it comes from the domain XML)', () => {
    expect(() => noteIncoming(dir, '../../etc/passwd')).toThrow(/expected a lower-case VM UUID/);
    expect(isIncoming(dir, '../x')).toBe(false);
    clearIncoming(dir, '../x');
  });
});
