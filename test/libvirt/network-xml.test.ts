import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseNetworkXml } from '../../src/libvirt/network-parse.js';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { networkUuid, uuidV5 } from '../../src/libvirt/uuid.js';
import { defaultSite, parseSite } from '../../src/site/parse.js';
import { arbSiteInput } from '../support/arbitraries.js';

describe('renderNetworkXml', () => {
  const site = defaultSite();

  it.each([
    ['secure', 'br-secure', 1081],
    ['service', 'br-service', 1082],
    ['datain', 'br-datain', 1083],
  ])('renders %s on %s with VLAN %i and the openvswitch virtualport', (name, bridge, vlan) => {
    const network = site.networks.find((n) => n.name === name)!;
    expect(renderNetworkXml(site, network)).toBe(`<network>
  <name>${name}</name>
  <uuid>${networkUuid('ticrypt', name)}</uuid>
  <forward mode="bridge"/>
  <bridge name="${bridge}"/>
  <virtualport type="openvswitch"/>
  <vlan>
    <tag id="${vlan}"/>
  </vlan>
</network>
`);
  });

  it("renders portgroups on the network's VLAN, with the default flag", () => {
    const custom = parseSite({
      networks: {
        secure: {
          preset: 'secure',
          vlan: 2001,
          portgroups: [{ name: 'batch' }, { name: 'interactive', vlan: 2001, default: true }],
        },
      },
    });
    const xml = renderNetworkXml(custom, custom.networks[0]!);
    expect(xml).toContain(`  <portgroup name="batch">
    <vlan>
      <tag id="2001"/>
    </vlan>
  </portgroup>
  <portgroup name="interactive" default="yes">
    <vlan>
      <tag id="2001"/>
    </vlan>
  </portgroup>
`);
  });

  it('is byte-identical on every render, and the UUID depends on site and network name', () => {
    const network = site.networks[0]!;
    expect(renderNetworkXml(site, network)).toBe(renderNetworkXml(defaultSite(), network));
    expect(networkUuid('ticrypt', 'secure')).not.toBe(networkUuid('other', 'secure'));
    expect(networkUuid('ticrypt', 'secure')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('computes RFC 9562 version 5 UUIDs (the RFC example: DNS namespace, www.example.com)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('round-trips through parseNetworkXml for random valid sites', () => {
    fc.assert(
      fc.property(arbSiteInput, (input) => {
        const random = parseSite(input);
        for (const network of random.networks) {
          expect(parseNetworkXml(renderNetworkXml(random, network))).toEqual({
            name: network.name,
            uuid: networkUuid(random.name, network.name),
            forwardMode: 'bridge',
            bridge: network.bridge,
            virtualport: { type: 'openvswitch', parameters: {} },
            vlan: { trunk: false, tags: [{ id: network.vlan }] },
            portgroups: network.portgroups.map((g) => ({
              name: g.name,
              vlan: { trunk: false, tags: [{ id: g.vlan }] },
              default: g.default,
            })),
          });
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseNetworkXml', () => {
  it('reads what virsh net-dumpxml prints (single quotes, extra elements)', () => {
    const xml = `<network connections='2'>
  <name>secure</name>
  <uuid>bae47d06-9630-50bf-a6e7-6f8208a9b357</uuid>
  <forward mode='bridge'/>
  <bridge name='br-secure'/>
  <virtualport type='openvswitch'/>
  <vlan>
    <tag id='1081'/>
  </vlan>
</network>`;
    expect(parseNetworkXml(xml)).toMatchObject({
      name: 'secure',
      bridge: 'br-secure',
      vlan: { trunk: false, tags: [{ id: 1081 }] },
      virtualport: { type: 'openvswitch', parameters: {} },
    });
  });

  it.each([
    ['', 'Cannot parse network XML: expected XML, found empty input'],
    ['<domain><name>x</name></domain>', 'Cannot parse network XML: expected a <network> root element, found <domain>'],
    ['<network><bridge name="x"/></network>', 'Cannot parse network XML: expected a <name>, found none'],
    ['<network><name>x</name>', 'Cannot parse network XML: expected well-formed XML, found'],
  ])('rejects %j', (xml, message) => {
    expect(() => parseNetworkXml(xml)).toThrow(message);
  });
});
