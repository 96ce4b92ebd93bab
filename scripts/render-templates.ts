// Regenerate xml-templates/ from the renderer: `npm run templates`.
// test/libvirt/templates.test.ts fails when the committed files drift from it.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderNetworkXml } from '../src/libvirt/network-xml.js';
import { defaultSite } from '../src/site/parse.js';

const site = defaultSite();
for (const network of site.networks) {
  const path = fileURLToPath(new URL(`../xml-templates/${network.name}.xml`, import.meta.url));
  await writeFile(path, renderNetworkXml(site, network));
  console.log(`wrote ${path}`);
}
