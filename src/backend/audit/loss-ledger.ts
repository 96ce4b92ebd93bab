/**
 * The flow audit's loss ledger: every loss and overrun the service counted,
 * the last Drops it read per netlink socket of ulogd, and when it last saw
 * ulogd running, kept in the audit directory beside the readers' offsets so
 * that `/metrics` and `doctor --role backend` do not start again at 0 when
 * the service restarts (a loss before a restart stays visible after it).
 * Saved atomically (temporary file, rename); a missing or unreadable ledger
 * is an empty one (counting starts again, as before the ledger existed).
 * Side effects: reads and writes the ledger file.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';

/** The ways a record is lost (`ticrypt_audit_lost_total{how}`). */
export const LOSS_KINDS = ['nflog-gap', 'logger-down', 'malformed'] as const;
/** One way a record is lost. */
export type LossKind = (typeof LOSS_KINDS)[number];

const Drops = z.record(z.string().regex(/^\d+$/), z.number().int().nonnegative());

/** What the ledger file holds. */
export const LossLedger = z.strictObject({
  v: z.literal(1),
  /** Totals by kind since the ledger was created. */
  lost: z.strictObject({
    'nflog-gap': z.number().int().nonnegative(),
    'logger-down': z.number().int().nonnegative(),
    malformed: z.number().int().nonnegative(),
  }),
  /** Conntrack end events ulogd's event socket overran (resent by the kernel). */
  overruns: z.number().int().nonnegative(),
  /** Seconds no ulogd ran, as the service's polls saw it. */
  loggerDownSeconds: z.number().nonnegative(),
  /** The last Drops read per socket inode of ulogd, by kind: a restarted service counts from there. */
  sockets: z.strictObject({ events: Drops, log: Drops }),
  /** When the service last saw ulogd running (ms since the epoch), and its pid. */
  loggerSeen: z.strictObject({ at: z.number().int().nonnegative(), pid: z.number().int().positive() }).optional(),
});
/** What the ledger file holds. */
export type LossLedger = z.infer<typeof LossLedger>;

/** A ledger with nothing counted. */
export function emptyLedger(): LossLedger {
  return {
    v: 1,
    lost: { 'nflog-gap': 0, 'logger-down': 0, malformed: 0 },
    overruns: 0,
    loggerDownSeconds: 0,
    sockets: { events: {}, log: {} },
  };
}

/** The ledger in `path`; an empty one when it is missing or not a ledger. */
export async function loadLedger(path: string): Promise<LossLedger> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return emptyLedger();
  try {
    const parsed = LossLedger.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : emptyLedger();
  } catch {
    return emptyLedger();
  }
}

/** Replace the ledger in `path` atomically. */
export async function saveLedger(path: string, ledger: LossLedger): Promise<void> {
  const temporary = `${path}.tmp`;
  await writeFile(temporary, `${JSON.stringify(ledger)}\n`);
  await rename(temporary, path);
}

/** Per-inode Drops as the ledger keeps them. */
export function dropsToRecord(drops: ReadonlyMap<number, number>): Record<string, number> {
  return Object.fromEntries([...drops].map(([inode, value]) => [String(inode), value]));
}

/** Per-inode Drops from the ledger. */
export function dropsFromRecord(record: Readonly<Record<string, number>>): Map<number, number> {
  return new Map(Object.entries(record).map(([inode, value]) => [Number(inode), value]));
}
