import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { defaultSite } from '../../src/site/parse.js';

describe('xml-templates/', () => {
  const site = defaultSite();
  it.each(site.networks.map((n) => [n.name, n] as const))(
    '%s.xml matches the renderer (npm run templates)',
    async (name, network) => {
      const committed = await readFile(new URL(`../../xml-templates/${name}.xml`, import.meta.url), 'utf8');
      expect(committed).toBe(renderNetworkXml(site, network));
    },
  );
});
