import { readFile } from 'node:fs/promises';
import { SiteError } from '../errors/site-error.js';
import type { Site } from './model.js';
import { defaultSite, parseSite } from './parse.js';
import { readYaml } from './yaml.js';

/**
 * Read and validate a site file (YAML; JSON is YAML too). Without a path, the
 * presets.
 *
 * @throws {SiteError} `E_SITE_INVALID` when the file cannot be read, is not
 * YAML, or describes an invalid site; the message names the file.
 * @example const site = await loadSite('/etc/ticrypt-net/site.yaml');
 */
export async function loadSite(path?: string): Promise<Site> {
  if (path === undefined) return defaultSite();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new SiteError([{ path: '(file)', message: `expected a readable file, found ${reason}` }], path);
  }
  return parseSiteText(text, path);
}

/** Validate a site given as YAML text. `source` names it in errors. */
export function parseSiteText(text: string, source?: string): Site {
  const read = readYaml(text);
  if (!read.ok) throw new SiteError([read.issue], source);
  return parseSite(read.data, source);
}
