import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeLines, GENESIS, GENESIS_HEAD, lineHash, parseLine } from '../../../src/backend/audit/line.js';
import { flow } from './support.js';

describe('audit lines', () => {
  it('hashes a line as SHA-256 hex of its bytes, text or buffer alike', () => {
    const text = '{"seq":1,"at":"2026-12-01T10:00:00.000Z","prev":"x","rec":{"kind":"flow","ü":1}}';
    const expected = createHash('sha256').update(Buffer.from(text)).digest('hex');
    expect(lineHash(text)).toBe(expected);
    expect(lineHash(Buffer.from(text))).toBe(expected);
  });

  it('chains each line to the previous one, the first to the genesis', () => {
    const { text, head } = encodeLines(GENESIS_HEAD, [flow(1), flow(2)], new Date('2026-12-01T10:00:00Z'));
    const [a, b] = text.trimEnd().split('\n') as [string, string];
    expect(parseLine(a)).toMatchObject({ seq: 1, prev: GENESIS, at: '2026-12-01T10:00:00.000Z', rec: flow(1) });
    expect(parseLine(b)).toMatchObject({ seq: 2, prev: lineHash(a), rec: flow(2) });
    expect(head).toEqual({ seq: 2, hash: lineHash(b) });
    expect(text.endsWith('\n')).toBe(true);
  });

  it.each([
    ['half a line', '{"seq":1,"at":"x","prev":"'],
    ['no seq', `{"at":"x","prev":"${GENESIS}","rec":{"kind":"flow"}}`],
    ['seq 0', `{"seq":0,"at":"x","prev":"${GENESIS}","rec":{"kind":"flow"}}`],
    ['bad prev', '{"seq":1,"at":"x","prev":"abc","rec":{"kind":"flow"}}'],
    ['no kind', `{"seq":1,"at":"x","prev":"${GENESIS}","rec":{}}`],
    ['zero bytes', '\0\0\0\0'],
    ['an array', '[]'],
  ])('refuses %s', (_name, text) => {
    expect(parseLine(text)).toBeUndefined();
  });
});
