/**
 * The names and paths ticrypt-net shares across its parts: the libvirt
 * connection, libvirt's hook directory, the nftables table, and the default
 * places of its files. One home each, so a change is made once.
 *
 * For: every part (the hook bundle included: it only pulls in what it uses).
 * May not: import anything, or hold anything but constants.
 */

/** The libvirt connection of the host's system daemon (`virsh -c`, `host plan|apply|reconcile --connect`). */
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';
