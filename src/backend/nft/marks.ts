/**
 * The marks `table inet ticrypt` uses: NIC ids in bits 0-23 of `meta mark`
 * and `ct mark`, and one reserved `ct mark` for SSH-forwarded flows. (The
 * fail-closed bit, one of bits 24-31, is the site's `backend.failClosedMark`.)
 */

/** The bits of a packet or conntrack mark that hold a NIC id (bits 0-23). */
export const NIC_ID_MASK = 0x00ffffff;

/** The largest NIC id; ids run 1 to this. */
export const MAX_NIC_ID = 0x00fffffe;

/** The `ct mark` of flows opened by an SSH forward (backend port to a VM's port 22); never a NIC id. */
export const SSH_FLOW_MARK = 0x00ffffff;

/** A mark (a NIC id, or the fail-closed bit) as nft writes it: `0x0000002a`. */
export function markText(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
