/**
 * Which of the site's hosts this machine is. For: `host plan|apply` and
 * doctor. May not: guess: a name the site does not list is no host of it.
 */
import { hostname } from 'node:os';
import type { Site } from '../site/model.js';

/** Which host of the site this is: `host` when given, else this machine's name when the site lists it. */
export function resolveHost(site: Site, host: string | undefined): string | undefined {
  if (host !== undefined) return host;
  const own = hostname();
  return site.hosts.some((h) => h.name === own) ? own : undefined;
}
