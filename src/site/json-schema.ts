import { z } from 'zod';
import { Name } from './primitives.js';
import { NetworkSchema, SiteSchema } from './schema.js';

/**
 * A JSON Schema (draft 2020-12) of the site file, for editors (e.g. the YAML
 * language server's `# yaml-language-server: $schema=...`). It describes the
 * shapes; the rules between fields are checked by `parseSite` only. Network
 * fields are all optional here because `preset` may supply them.
 */
export function siteJsonSchema(): Record<string, unknown> {
  const file = SiteSchema.extend({ networks: z.record(Name, NetworkSchema.partial()).optional() });
  return {
    ...z.toJSONSchema(file, { io: 'input', unrepresentable: 'any' }),
    title: 'ticrypt-net site',
  };
}
