import type { z } from 'zod';
import type { SiteIssue } from '../errors/site-error.js';

/** A path into the site, as zod gives it: keys and list indexes. */
export type SitePath = readonly PropertyKey[];

/** `['networks', 'secure', 'portgroups', 0, 'vlan']` → `networks.secure.portgroups[0].vlan`. */
export function formatPath(path: SitePath): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Turn zod's issues into site issues: one per field, unknown keys one by one. */
export function fromZodIssues(issues: readonly z.core.$ZodIssue[], prefix: SitePath = []): SiteIssue[] {
  const out: SiteIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...path, key]), message: 'unknown field (not part of the site schema)' });
      }
    } else if (issue.code === 'invalid_key') {
      // A bad map key (a network or host name): the key schema's message says what a name must be.
      out.push({ path: formatPath(path), message: issue.issues[0]?.message ?? issue.message });
    } else {
      out.push({ path: formatPath(path), message: issue.message });
    }
  }
  return out;
}
