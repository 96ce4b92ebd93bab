/**
 * Which libvirt hook calls the hook acts on, and how strictly. Plain data.
 * `hooks/qemu` and `hooks/network` hold the same op lists, so other ops never
 * start Node. May not: do I/O.
 */
/** What the hook does at one libvirt call. */
export interface OpAction {
  readonly action: 'register' | 'deregister';
  /**
   * Whether a failed registration on a `requireRegistration` network makes the
   * hook exit non-zero (libvirt then refuses to run the VM). Only where the
   * guest has not run yet: never at `reconnect` (libvirt would kill a running
   * VM) nor `started` (registration already happened at `start`).
   */
  readonly strict: boolean;
}

/**
 * The qemu hook's ops table (`/etc/libvirt/hooks/qemu NAME OP SUBOP EXTRA`).
 * Every op not listed (`prepare`, `migrate`, `attach`, ...) is left alone:
 * exit 0, nothing read, nothing written. `hooks/qemu` holds the same list so
 * those ops do not even start Node.
 */
export const QEMU_OPS: Readonly<Record<string, OpAction>> = {
  start: { action: 'register', strict: true },
  started: { action: 'register', strict: false },
  reconnect: { action: 'register', strict: false },
  restore: { action: 'register', strict: true },
  stopped: { action: 'deregister', strict: false },
  release: { action: 'deregister', strict: false },
};

/**
 * The network hook's ops table (`/etc/libvirt/hooks/network NAME OP SUBOP`):
 * ports created and deleted on a managed network, which includes NICs
 * hot-plugged into or unplugged from a running VM. Never strict: the qemu
 * hook decides whether a VM may run.
 */
export const NETWORK_OPS: Readonly<Record<string, OpAction>> = {
  'port-created': { action: 'register', strict: false },
  'port-deleted': { action: 'deregister', strict: false },
};

/** The ops table of a hook kind. */
export function opsOf(kind: 'qemu' | 'network'): Readonly<Record<string, OpAction>> {
  return kind === 'qemu' ? QEMU_OPS : NETWORK_OPS;
}
