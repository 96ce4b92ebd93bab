import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { SiteIssue } from '../errors/site-error.js';

/** The outcome of {@link readYaml}: the data, or the one issue that says where the syntax broke. */
export type YamlRead =
  { readonly ok: true; readonly data: unknown } | { readonly ok: false; readonly issue: SiteIssue };

/**
 * Parse a configuration file's YAML strictly: duplicate keys refused, aliases
 * bounded (no billion laughs). A syntax error becomes an issue at path
 * `(file)` naming line and column; anything else is rethrown.
 *
 * @example readYaml('a: [') // { ok: false, issue: { path: '(file)', message: 'expected YAML, found a syntax error at line 1, column 5: ...' } }
 */
export function readYaml(text: string): YamlRead {
  try {
    return { ok: true, data: parseYaml(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 }) };
  } catch (error) {
    if (!(error instanceof YAMLParseError)) throw error;
    const where = error.linePos?.[0] ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : 'somewhere';
    const first = (error.message.split('\n')[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, '');
    return {
      ok: false,
      issue: { path: '(file)', message: `expected YAML, found a syntax error at ${where}: ${first}` },
    };
  }
}
