/**
 * The hook configuration's types and defaults, shared by the hook call, the
 * host agent, the validator and the installer. May not: import anything at run
 * time (the hook bundle imports it).
 */
/** Default per-request time limit in ms. */
export const DEFAULT_REQUEST_MS = 1500;
/** Default bound on a whole hook run in ms, Node start included. */
export const DEFAULT_HOOK_MS = 2000;

/** A libvirt network whose NICs the hook registers with the backend. */
export interface HookNetwork {
  /** The libvirt network name, also the backend's network name. */
  readonly name: string;
  /** Its OVS bridge: NICs of `<interface type='bridge'>` straight on it count as this network. */
  readonly bridge?: string;
  /**
   * When true, a VM start whose registration on this network fails is
   * refused (the hook exits non-zero); when false (default) the VM starts
   * with no access and the registration is spooled.
   */
  readonly requireRegistration: boolean;
}

/** The validated hook configuration (`/etc/ticrypt-net/hook.yaml`). */
export interface HookConfig {
  /** This host's id: the part of its token before the dot. */
  readonly hostId: string;
  readonly backend: {
    /** Base URL of the backend API, e.g. `https://198.18.0.1:8443`. */
    readonly url: string;
    /** PEM CA file to trust for an https URL (default: the system's CAs). */
    readonly caFile?: string;
    /** File holding this host's token `<hostId>.<secret>`; readable by its owner only. */
    readonly tokenFile: string;
    /** Allow a plain `http://` URL (default: only https). */
    readonly insecure?: boolean;
  };
  readonly networks: readonly HookNetwork[];
  readonly timeouts: {
    /** Time limit of one backend call. */
    readonly requestMs: number;
    /** Bound on a whole hook run, from process start to exit. */
    readonly hookMs: number;
  };
  /** Spool of undelivered events, the generation counter and the locks. */
  readonly spoolDir: string;
  /** Also log to syslog/journald (through `logger`). */
  readonly syslog: boolean;
  /** Live migration (absent in a cache written before it existed: the defaults). */
  readonly migration?: {
    /**
     * When true, the destination's `migrate begin` exits non-zero, and libvirt
     * refuses the incoming migration, unless the backend confirmed every
     * managed NIC's marked register (default false: the migration goes on, the
     * register is spooled, see DESIGN-NOTES.md).
     */
    readonly requireBackend: boolean;
  };
}
