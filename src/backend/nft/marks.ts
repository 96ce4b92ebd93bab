/**
 * The marks `table inet ticrypt` uses: NIC ids in bits 0-23 of `meta mark`
 * and `ct mark` (every flow the table accepts for a NIC, SSH-forwarded ones
 * included, carries its id). (The fail-closed bit, one of bits 24-31, is the
 * site's `backend.failClosedMark`.)
 */

/** The bits of a packet or conntrack mark that hold a NIC id (bits 0-23). */
export const NIC_ID_MASK = 0x00ffffff;

/** The largest NIC id; ids run 1 to this. */
export const MAX_NIC_ID = 0x00fffffe;

/**
 * The `meta mark` a packet the table refused carries from its drop chain to
 * the `drop_marked_*` chain that drops it, one value per drop kind above this
 * base (0x00ffff01, ...; see `counter-table.ts`). The fail-closed bit is clear
 * in every one of them, and every packet the table accepts from or towards a
 * VM network carries it, so no accepted packet of ours can equal one.
 */
export const DROP_MARK_BASE = 0x00ffff00;

/** A mark (a NIC id, or the fail-closed bit) as nft writes it: `0x0000002a`. */
export function markText(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/**
 * Flow audit: bits 24-30 of a flow's `ct mark` say what admitted it, bit 31
 * that it is audited (ulogd keeps only end events with bit 31). Set by the
 * accepting rule itself, after its lookups, so the NIC id bits stay as they
 * were; every lookup that keys on `ct mark` masks it with {@link NIC_ID_MASK}.
 */
export const ADMISSION = { allow: 1, dns: 2, ssh: 3 } as const;

/** What admitted an audited flow, as {@link ADMISSION} names it. */
export type Admission = keyof typeof ADMISSION;

/** Bit 31 of `ct mark`: the flow is audited. */
export const AUDITED_BIT = 0x80000000;

/** Bits 24-30 of `ct mark`: the admission code. */
export const ADMISSION_MASK = 0x7f000000;

/** The bits an accepting rule ORs into `ct mark` for an audited flow admitted by `kind`. */
export function admissionBits(kind: Admission): number {
  return (AUDITED_BIT | (ADMISSION[kind] << 24)) >>> 0;
}

/** A flow's `ct mark` read back: its NIC id and what admitted it (`undefined`: not audited or unknown code). */
export function decodeFlowMark(mark: number): { nicId: number; admission: Admission | undefined } {
  const code = (mark & ADMISSION_MASK) >>> 24;
  const admission =
    (mark & AUDITED_BIT) === 0 ? undefined : (Object.keys(ADMISSION) as Admission[]).find((k) => ADMISSION[k] === code);
  return { nicId: mark & NIC_ID_MASK, admission };
}
