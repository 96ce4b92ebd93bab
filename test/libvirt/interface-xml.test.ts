import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/libvirt/domain-nics.js';
import { renderInterfaceXml } from '../../src/libvirt/interface-xml.js';
import { effectiveVlan } from '../../src/site/lookup.js';
import { defaultSite, parseSite } from '../../src/site/parse.js';
import { arbMac, arbSiteInput } from '../support/arbitraries.js';
import { minimalDomain } from '../support/libvirt-judges.js';

const site = defaultSite();
const secure = site.networks[0]!;

describe('renderInterfaceXml', () => {
  it('renders a NIC on the secure network, VLAN-tagged, MAC lower-cased', () => {
    expect(renderInterfaceXml({ network: secure, mac: '52:54:00:AB:CD:EF', bootOrder: 1 }))
      .toBe(`<interface type="network">
  <mac address="52:54:00:ab:cd:ef"/>
  <source network="secure"/>
  <virtualport type="openvswitch"/>
  <vlan>
    <tag id="1081"/>
  </vlan>
  <model type="virtio"/>
  <boot order="1"/>
</interface>
`);
  });

  it('renders the bridge form for hosts without the libvirt network, with the MTU', () => {
    const custom = parseSite({ networks: { service: { preset: 'service', mtu: 9000 } } });
    expect(renderInterfaceXml({ network: custom.networks[0]!, mac: '52:54:00:00:00:01', form: 'bridge' }))
      .toBe(`<interface type="bridge">
  <mac address="52:54:00:00:00:01"/>
  <source bridge="br-service"/>
  <virtualport type="openvswitch"/>
  <vlan>
    <tag id="1082"/>
  </vlan>
  <mtu size="9000"/>
  <model type="virtio"/>
</interface>
`);
  });

  it("names the portgroup, on the network's VLAN (the only one a portgroup may have)", () => {
    const custom = parseSite({
      networks: {
        secure: {
          preset: 'secure',
          vlan: 2001,
          portgroups: [{ name: 'batch' }, { name: 'interactive', default: true }],
        },
      },
    });
    const network = custom.networks[0]!;
    const xml = renderInterfaceXml({ network, mac: '52:54:00:00:00:01', portgroup: 'batch' });
    expect(xml).toContain('<source network="secure" portgroup="batch"/>');
    expect(xml).toContain('<tag id="2001"/>');
    expect(renderInterfaceXml({ network, mac: '52:54:00:00:00:01' })).toContain('<tag id="2001"/>');
    expect(effectiveVlan(secure)).toBe(1081);
  });

  it.each([
    [{ mac: 'nope' }, 'Invalid MAC: expected a unicast MAC address like 52:54:00:12:34:56, found "nope"'],
    [
      { mac: '01:00:5e:00:00:01' },
      'Invalid MAC: expected a unicast MAC address like 52:54:00:12:34:56, found "01:00:5e:00:00:01"',
    ],
    [{ portgroup: 'x' }, 'Unknown portgroup "x" on network secure: expected none (the network has no portgroups)'],
    [{ bootOrder: 0 }, 'Invalid boot order: expected an integer of 1 or more, found 0'],
    [{ model: 'virtio"/><x' }, 'Invalid NIC model: expected a model name like virtio or e1000, found "virtio\\"/><x"'],
  ])('refuses %j', (override, message) => {
    expect(() => renderInterfaceXml({ network: secure, mac: '52:54:00:00:00:01', ...override })).toThrow(message);
  });
});

describe('parseDomainXml', () => {
  const live = `<domain type='qemu' id='3'>
  <name>vm-7</name>
  <uuid>0b1d2c3e-0000-4000-8000-000000000007</uuid>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='bridge'>
      <mac address='52:54:00:12:34:56'/>
      <source network='secure' portid='8c1ad7e4-2d40-4a4e-9c87-1d3fe3b4f0a1' bridge='br-secure'/>
      <vlan>
        <tag id='1081'/>
      </vlan>
      <virtualport type='openvswitch'>
        <parameters interfaceid='a3a3f0c1-4b9b-4c5f-8f6d-6f8c6b0b2d11'/>
      </virtualport>
      <target dev='vnet1'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:AA:BB:CC'/>
      <source network='service' portgroup='pg'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:00:00:99'/>
    </interface>
  </devices>
</domain>`;

  it('reads the live form (what the hook sees at start) and the configured form', () => {
    expect(parseDomainXml(live)).toEqual({
      name: 'vm-7',
      uuid: '0b1d2c3e-0000-4000-8000-000000000007',
      nics: [
        {
          type: 'bridge',
          mac: '52:54:00:12:34:56',
          network: 'secure',
          bridge: 'br-secure',
          vlanTags: [1081],
          vlanTrunk: false,
          target: 'vnet1',
          virtualport: 'openvswitch',
          interfaceId: 'a3a3f0c1-4b9b-4c5f-8f6d-6f8c6b0b2d11',
          model: 'virtio',
        },
        {
          type: 'network',
          mac: '52:54:00:aa:bb:cc',
          network: 'service',
          portgroup: 'pg',
          vlanTags: [],
          vlanTrunk: false,
          model: 'virtio',
        },
        { type: 'user', mac: '52:54:00:00:00:99', vlanTags: [], vlanTrunk: false },
      ],
    });
  });

  it('reads trunks and leaves out invalid values', () => {
    const xml = `<domain><devices><interface type='bridge'><mac address='zz:zz'/><source bridge='br0'/>
      <vlan trunk='yes'><tag id='10'/><tag id='20' nativeMode='untagged'/><tag id='99999'/></vlan></interface></devices></domain>`;
    expect(parseDomainXml(xml).nics).toEqual([{ type: 'bridge', bridge: 'br0', vlanTags: [10, 20], vlanTrunk: true }]);
  });

  it.each([
    ['truncated', live.slice(0, 300), /^Cannot parse domain XML: expected well-formed XML, found/],
    ['not XML', 'this is not xml', /^Cannot parse domain XML: expected well-formed XML, found/],
    ['empty', '', /^Cannot parse domain XML: expected XML, found empty input$/],
    [
      'another root',
      '<network><name>x</name></network>',
      /^Cannot parse domain XML: expected a <domain> root element, found <network>$/,
    ],
  ])('rejects %s input with an XmlParseError', (_name, xml, message) => {
    expect(() => parseDomainXml(xml)).toThrow(message);
    try {
      parseDomainXml(xml);
    } catch (error) {
      expect((error as { code: string }).code).toBe('E_XML_PARSE');
    }
  });

  it('reads a domain without devices or with a NIC without MAC', () => {
    expect(parseDomainXml('<domain><name>x</name></domain>').nics).toEqual([]);
    expect(
      parseDomainXml(
        "<domain><devices><interface type='network'><source network='secure'/></interface></devices></domain>",
      ).nics,
    ).toEqual([{ type: 'network', network: 'secure', vlanTags: [], vlanTrunk: false }]);
  });

  it('copes with a 10 MB document', () => {
    const filler = `<description>${'x'.repeat(10 * 1024 * 1024)}</description>`;
    const big = live.replace('<devices>', `${filler}<devices>`);
    expect(parseDomainXml(big).nics).toHaveLength(3);
  });

  it('round-trips every rendered interface for random sites', () => {
    fc.assert(
      fc.property(arbSiteInput, arbMac, fc.constantFrom('network', 'bridge'), (input, mac, form) => {
        const random = parseSite(input);
        for (const network of random.networks) {
          const groups = [undefined, ...network.portgroups.map((g) => g.name)];
          for (const portgroup of groups) {
            const xml = renderInterfaceXml({ network, mac, form, ...(portgroup === undefined ? {} : { portgroup }) });
            const [nic] = parseDomainXml(minimalDomain('vm', [xml])).nics;
            expect(nic).toEqual({
              type: form,
              mac: mac.toLowerCase(),
              ...(form === 'network' ? { network: network.name } : { bridge: network.bridge }),
              // The bridge form has no libvirt network, so no portgroup: its VLAN tag carries the choice.
              ...(portgroup === undefined || form === 'bridge' ? {} : { portgroup }),
              vlanTags: [effectiveVlan(network, portgroup)],
              vlanTrunk: false,
              virtualport: 'openvswitch',
              model: 'virtio',
            });
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('never throws anything but XmlParseError on random input', () => {
    const fragments = fc.constantFrom(
      '<domain>',
      '</domain>',
      '<devices>',
      '</devices>',
      "<interface type='network'>",
      '</interface>',
      "<mac address='52:54:00:00:00:01'/>",
      '<source network="secure"/>',
      '<!--',
      '<![CDATA[',
      '&amp;',
      '&bogus;',
      '<?xml version="1.0"?>',
      '<vlan><tag id="1"/></vlan>',
    );
    const arbitraryDoc = fc.oneof(
      fc.string(),
      fc.array(fc.oneof(fragments, fc.string({ maxLength: 5 })), { maxLength: 30 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(arbitraryDoc, (text) => {
        try {
          parseDomainXml(text);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('E_XML_PARSE');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
