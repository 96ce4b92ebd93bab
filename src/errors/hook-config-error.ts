import { TicryptNetError } from './ticrypt-net-error.js';

/**
 * The hook configuration (`/etc/ticrypt-net/hook.yaml`) cannot be used: the
 * file is missing or unreadable, is not YAML, or a field is invalid. Each
 * issue names the field, what was expected and what was found.
 */
export class HookConfigError extends TicryptNetError {
  /** The configuration file. */
  readonly file: string;
  /** One entry per offending field. */
  readonly issues: readonly { path: string; message: string }[];

  constructor(file: string, issues: readonly { path: string; message: string }[]) {
    super(
      'E_HOOK_CONFIG',
      `Invalid hook configuration ${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    );
    this.name = 'HookConfigError';
    this.file = file;
    this.issues = issues;
  }
}
