import { TicryptNetError } from './ticrypt-net-error.js';

/** One problem found in a site description. */
export interface SiteIssue {
  /** Dotted path of the offending field, e.g. `networks.secure.vlan` (`(root)` for the whole file). */
  readonly path: string;
  /** What is wrong: `expected ..., found ...`. */
  readonly message: string;
}

/**
 * A site description is invalid. Carries every issue found, not just the first.
 *
 * @example
 * ```
 * Invalid site (2 errors) in site.yaml:
 *   networks.secure.vlan: expected an integer 1-4094, found 5000
 *   networks.secure.gateway: expected an address inside 192.168.128.0/17, found 10.0.0.1
 * ```
 */
export class SiteError extends TicryptNetError {
  /** Every issue, in the order found. */
  readonly issues: readonly SiteIssue[];
  /** Where the site came from (a file path), when known. */
  readonly source: string | undefined;

  constructor(issues: readonly SiteIssue[], source?: string) {
    super('E_SITE_INVALID', formatSiteIssues(issues, source));
    this.name = 'SiteError';
    this.issues = issues;
    this.source = source;
  }
}

function formatSiteIssues(issues: readonly SiteIssue[], source: string | undefined): string {
  const count = `${issues.length} error${issues.length === 1 ? '' : 's'}`;
  const where = source === undefined ? '' : ` in ${source}`;
  return [`Invalid site (${count})${where}:`, ...issues.map((i) => `  ${i.path}: ${i.message}`)].join('\n');
}
