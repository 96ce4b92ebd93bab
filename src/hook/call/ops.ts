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
  /**
   * What the op does to the NICs' OVS ports (port security): `pin` their flows (after the
   * registration, with its address: the port is new), `check` them (pin what is missing or
   * differs), `unpin` them, or `want` them pinned once the port exists (the network hook runs
   * before it does: `host pin` waits for it).
   */
  readonly flows?: 'pin' | 'check' | 'unpin' | 'want';
  /**
   * Live migration to this host: `begin` (libvirt's `migrate`, run on the
   * destination only) notes the VM as incoming and registers with the
   * `incoming` marker (strict only with `migration.requireBackend`); `mark`
   * sends the marker when the VM is noted; `end` forgets the note.
   */
  readonly migration?: 'begin' | 'mark' | 'end';
}

/**
 * The qemu hook's ops table (`/etc/libvirt/hooks/qemu NAME OP SUBOP EXTRA`).
 * Every op not listed (`prepare`, `attach`, ...) is left alone:
 * exit 0, nothing read, nothing written. `hooks/qemu` holds the same list so
 * those ops do not even start Node.
 */
export const QEMU_OPS: Readonly<Record<string, OpAction>> = {
  migrate: { action: 'register', strict: false, migration: 'begin' },
  start: { action: 'register', strict: true, flows: 'pin', migration: 'mark' },
  started: { action: 'register', strict: false, flows: 'check', migration: 'mark' },
  reconnect: { action: 'register', strict: false, flows: 'check', migration: 'mark' },
  restore: { action: 'register', strict: true, flows: 'pin' },
  stopped: { action: 'deregister', strict: false, flows: 'unpin', migration: 'end' },
  release: { action: 'deregister', strict: false, migration: 'end' },
};

/**
 * The network hook's ops table (`/etc/libvirt/hooks/network NAME OP SUBOP`):
 * ports created and deleted on a managed network, which includes NICs
 * hot-plugged into or unplugged from a running VM. Never strict: the qemu
 * hook decides whether a VM may run.
 */
export const NETWORK_OPS: Readonly<Record<string, OpAction>> = {
  // A migration's destination creates the VM's ports too: while the VM is noted incoming, the marker goes along.
  'port-created': { action: 'register', strict: false, flows: 'want', migration: 'mark' },
  'port-deleted': { action: 'deregister', strict: false },
};

/** The ops table of a hook kind. */
export function opsOf(kind: 'qemu' | 'network'): Readonly<Record<string, OpAction>> {
  return kind === 'qemu' ? QEMU_OPS : NETWORK_OPS;
}
