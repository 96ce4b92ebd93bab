import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * `ticrypt-net hook install` refused or failed: a foreign hook is in the way,
 * the interpreter is somewhere AppArmor will not let libvirt run it from, or a
 * file could not be written. `path` names the file concerned.
 */
export class HookInstallError extends TicryptNetError {
  /** The file the refusal or failure is about. */
  readonly path: string;

  constructor(path: string, message: string, options?: ErrorOptions) {
    super('E_HOOK_INSTALL', message, options);
    this.name = 'HookInstallError';
    this.path = path;
  }
}
