import type { FlowObservation, ProgramKey } from '../../src/portsec/dump.js';
import { programKey } from '../../src/portsec/dump.js';
import type { BridgeIntent } from '../../src/portsec/intent.js';
import { programFlowCount } from '../../src/portsec/render.js';

/** What a bridge holds once every program of `intent` is installed (stamps, counts, canary). */
export function installed(intent: BridgeIntent): FlowObservation {
  const stamps = new Map<ProgramKey, number>();
  const counts = new Map<ProgramKey, number>();
  for (const { program } of intent.programs) {
    stamps.set(programKey(program.kind, program.ident), program.digest);
    counts.set(programKey(program.kind, program.ident), programFlowCount(program));
  }
  return { canary: true, stamps, counts };
}
