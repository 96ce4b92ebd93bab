/**
 * The names and paths ticrypt-net shares across its parts: the libvirt
 * connection and hook directory, the nftables table, and the default places
 * of its files. One home each, so a change is made once.
 *
 * For: every part (the hook bundle included: it only pulls in what it uses).
 * May not: import anything, or hold anything but constants.
 */

/** The libvirt connection of the host's system daemon (`virsh -c`; `--connect` of host plan|apply|reconcile, doctor). */
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

/** Where libvirt looks for its hooks (`qemu`, `network`, and `qemu.d/`, `network.d/` beside them). */
export const LIBVIRT_HOOKS_DIR = '/etc/libvirt/hooks';

/** The file name ticrypt-net's hooks take in `qemu.d/` and `network.d/` (installed beside other hooks). */
export const HOOK_DROP_IN_NAME = 'ticrypt-net';

/** The prefix of every NetworkManager connection ticrypt-net creates (`ticrypt-net-bond0.1081`). */
export const NM_CONNECTION_PREFIX = 'ticrypt-net-';

/** The nftables table every ticrypt rule lives in (family, name), and nothing else touches. */
export const NFT_TABLE = { family: 'inet', name: 'ticrypt' } as const;

/** {@link NFT_TABLE} as nft commands name it: `inet ticrypt`. */
export const NFT_TABLE_REF = `${NFT_TABLE.family} ${NFT_TABLE.name}` as const;

/**
 * Where `hook install` copies the hook's bundle (`hook.cjs`, `hook-config.cjs`):
 * a stable path of its own, so removing or rebuilding the checkout or package
 * it was installed from never breaks a VM start. A hook copied by hand looks here.
 */
export const HOOK_LIB_DIR = '/usr/local/lib/ticrypt-net/hook';

/** The hook configuration (`hook install` writes it; the hooks, `hook check` and `host flush|reconcile` read it). */
export const DEFAULT_HOOK_CONFIG = '/etc/ticrypt-net/hook.yaml';

/** The hook's cache of the last valid configuration (tmpfs: rebuilt once after a reboot). */
export const DEFAULT_HOOK_CACHE = '/run/ticrypt-net/hook-config.json';

/** The host's spool of undelivered events, generation counter and locks. */
export const DEFAULT_SPOOL_DIR = '/var/lib/ticrypt-net/spool';

/** The backend's state: dnsmasq's configs, host entries and leases live below it. */
export const DEFAULT_STATE_DIR = '/var/lib/ticrypt-net';

/** The backend's SQLite store. */
export const DEFAULT_STORE = '/var/lib/ticrypt-net/backend.db';

/** The admin token `ticrypt-net allow` sends. */
export const DEFAULT_ADMIN_TOKEN_FILE = '/etc/ticrypt-net/admin.token';

/** The backend API on the management network, as the presets place it. */
export const DEFAULT_BACKEND_URL = 'https://198.18.0.1:8443';

/** The backend's audit records: one JSON-lines file per UTC day, hash-chained (`backend.auditStore.dir`). */
export const DEFAULT_AUDIT_DIR = '/var/lib/ticrypt-net/audit';
