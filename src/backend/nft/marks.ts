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

/** A mark (a NIC id, or the fail-closed bit) as nft writes it: `0x0000002a`. */
export function markText(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
