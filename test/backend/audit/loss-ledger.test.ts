import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  dropsFromRecord,
  dropsToRecord,
  emptyLedger,
  loadLedger,
  saveLedger,
} from '../../../src/backend/audit/loss-ledger.js';
import { DropTracker } from '../../../src/backend/audit/netlink-drops.js';

describe('the audit loss ledger', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const file = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-ledger-'));
    dirs.push(dir);
    return join(dir, 'losses.json');
  };

  it('keeps the totals and per-socket drops across a save and a load', async () => {
    const path = await file();
    const ledger = emptyLedger();
    ledger.lost['nflog-gap'] = 7;
    ledger.lost['logger-down'] = 1;
    ledger.overruns = 1508;
    ledger.loggerDownSeconds = 2.5;
    ledger.sockets = { events: dropsToRecord(new Map([[8026081, 425]])), log: {} };
    ledger.loggerSeen = { at: 1_796_129_550_000, pid: 25580 };
    await saveLedger(path, ledger);
    expect(await loadLedger(path)).toEqual(ledger);
  });

  it('reads a missing or damaged ledger as an empty one', async () => {
    const path = await file();
    expect(await loadLedger(path)).toEqual(emptyLedger());
    await writeFile(path, '{"v":1,"lost":');
    expect(await loadLedger(path)).toEqual(emptyLedger());
    await writeFile(path, '{"v":2}');
    expect(await loadLedger(path)).toEqual(emptyLedger());
  });

  it('lets a restarted service count only the drops since the last run (same sockets), and a new socket from 0', () => {
    const before = new DropTracker();
    expect(before.delta(new Map([[11, 5]]))).toBe(5);
    // The service restarts: its tracker starts from what the ledger kept.
    const after = new DropTracker(dropsFromRecord(dropsToRecord(before.seen)));
    expect(after.delta(new Map([[11, 9]]))).toBe(4);
    // A new logger: new socket inodes, counted from 0.
    expect(after.delta(new Map([[12, 3]]))).toBe(3);
  });
});
