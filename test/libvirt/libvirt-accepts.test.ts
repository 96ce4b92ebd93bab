import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderInterfaceXml } from '../../src/libvirt/interface-xml.js';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { generateMac } from '../../src/site/mac.js';
import type { Site } from '../../src/site/model.js';
import { defaultSite, parseSite } from '../../src/site/parse.js';
import { programsAvailable } from '../lab/prereq.js';
import { arbSiteInput } from '../support/arbitraries.js';
import { libvirtRejects, minimalDomain } from '../support/libvirt-judges.js';

const judges = programsAvailable('virsh', 'virt-xml-validate', 'xmllint');

/** Everything the project renders for a site: its networks, and a domain with every NIC variant. */
function renderEverything(site: Site) {
  const interfaces = site.networks.flatMap((network, n) => [
    renderInterfaceXml({ network, mac: generateMac(`${n}/network`), bootOrder: n + 1 }),
    renderInterfaceXml({ network, mac: generateMac(`${n}/bridge`), form: 'bridge', model: 'e1000' }),
    ...network.portgroups.map((group, g) =>
      renderInterfaceXml({ network, mac: generateMac(`${n}/${g}`), portgroup: group.name }),
    ),
  ]);
  return {
    networks: site.networks.map((network) => renderNetworkXml(site, network)),
    domains: [minimalDomain('vm1', interfaces)],
  };
}

describe.skipIf(!judges)('libvirt accepts what we render', () => {
  it('for the defaults', async () => {
    expect(await libvirtRejects(renderEverything(defaultSite()))).toEqual([]);
  });

  it('for random valid sites', async () => {
    await fc.assert(
      fc.asyncProperty(arbSiteInput, async (input) => {
        expect(await libvirtRejects(renderEverything(parseSite(input)))).toEqual([]);
      }),
      { numRuns: 25 },
    );
  });

  it('and the judges are real: they reject a broken network and a broken interface', async () => {
    const network = renderNetworkXml(defaultSite(), defaultSite().networks[0]!).replace(
      '<tag id="1081"/>',
      '<tag id="9999"/>',
    );
    const domain = minimalDomain('vm1', ['<interface type="network"><mac address="zz"/></interface>']);
    const failures = await libvirtRejects({ networks: [network], domains: [domain] });
    expect(failures.length).toBeGreaterThanOrEqual(2);
  });
});
