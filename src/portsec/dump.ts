/**
 * Reading `ovs-ofctl dump-flows` output back: which of ticrypt-net's programs
 * a bridge holds (their stamps), whether its canary is there, and how many
 * flows each program has. Pure. May not: run ovs-ofctl.
 */
import { ProgramOutputError } from '../errors/program-output-error.js';
import { parseCookie, STAMP_PRIORITY, TABLE, type ProgramKind } from './cookie.js';

/** A program's key: `port:7`, `group:5`, `bridge:0`. */
export type ProgramKey = `${ProgramKind}:${number}`;

/** The key of a program. */
export function programKey(kind: ProgramKind, ident: number): ProgramKey {
  return `${kind}:${ident}`;
}

/** What a bridge holds of ticrypt-net's flows. */
export interface FlowObservation {
  /** Whether the canary (`table=99,priority=0`, the bridge's cookie) is there: gone after ovs-vswitchd lost its flows. */
  readonly canary: boolean;
  /** Each program's stamp: its digest, by key. */
  readonly stamps: ReadonlyMap<ProgramKey, number>;
  /** Flows per program (stamp included), when the dump covered every table (not only the stamps). */
  readonly counts?: ReadonlyMap<ProgramKey, number>;
}

const LINE = /^\s*cookie=(0x[0-9a-f]+),.*?\btable=(\d+),.*?\bpriority=(\d+)(\S*)\s+actions=/;

/**
 * Parse a dump of a bridge's flows: ours only (other cookies are skipped).
 * With `complete` (a dump of every table), flows are counted per program too.
 *
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when the text is not a flow dump.
 */
export function parseFlowDump(text: string, complete: boolean): FlowObservation {
  const lines = text.split('\n');
  if (!lines.some((line) => /^OFPST_FLOW reply|^NXST_FLOW reply/.test(line))) {
    throw new ProgramOutputError('ovs-ofctl', 'a dump-flows reply', text);
  }
  let canary = false;
  const stamps = new Map<ProgramKey, number>();
  const counts = new Map<ProgramKey, number>();
  for (const line of lines) {
    const match = LINE.exec(line);
    if (!match) continue;
    const owner = parseCookie(BigInt(match[1] ?? '0'));
    if (owner === undefined) continue;
    const key = programKey(owner.kind, owner.ident);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (Number(match[2]) !== TABLE.stamps) continue;
    const priority = Number(match[3]);
    const fields = match[4] ?? '';
    if (owner.kind === 'bridge' && priority === STAMP_PRIORITY.canary) {
      canary = true;
      continue;
    }
    if (priority !== STAMP_PRIORITY[owner.kind]) continue;
    const metadata = /metadata=(0x[0-9a-f]+)/.exec(fields)?.[1];
    if (metadata !== undefined) stamps.set(key, Number(BigInt(metadata) & 0xffffffffn));
  }
  return { canary, stamps, ...(complete ? { counts } : {}) };
}
