/**
 * Our XML readers on libvirt's own test files (fixtures/libvirt-tests/, see
 * its NOTICE.md) and on our renders: the network parser keeps everything that
 * changes a network's behaviour or refuses the file naming what it cannot
 * represent; libvirt's own parser (the test driver) normalizes the files it
 * accepts, and our reading of libvirt's output equals our reading of the input.
 */
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/libvirt/domain-nics.js';
import { parseNetworkXml } from '../../src/libvirt/network-parse.js';
import { renderNetworkXml } from '../../src/libvirt/network-xml.js';
import { networkDifferences } from '../../src/host/network-diff.js';
import { parseSiteText } from '../../src/site/load.js';
import { programsAvailable } from '../lab/prereq.js';

const fixture = (path: string) => readFile(new URL(`fixtures/libvirt-tests/${path}`, import.meta.url), 'utf8');

/** What libvirt's own parser makes of a network file: `virsh net-define` then `net-dumpxml` in the test driver. */
async function libvirtNormalized(path: string, name: string): Promise<string> {
  const file = new URL(`fixtures/libvirt-tests/${path}`, import.meta.url).pathname;
  const result = await execa('virsh', ['-q', '-c', 'test:///default', `net-define ${file} ; net-dumpxml ${name}`]);
  return result.stdout.slice(result.stdout.indexOf('<network'));
}

describe('parseNetworkXml on libvirt test files it can represent', () => {
  it('openvswitch-net.xml: trunk portgroups keep every tag and their virtualport parameters', async () => {
    expect(parseNetworkXml(await fixture('networkxml2xmlin/openvswitch-net.xml'))).toEqual({
      name: 'openvswitch-net',
      uuid: '81ff0d90-c92e-6742-64da-4a736edb9a8b',
      forwardMode: 'bridge',
      virtualport: { type: 'openvswitch', parameters: {} },
      portgroups: [
        {
          name: 'bob',
          default: true,
          vlan: { trunk: true, tags: [{ id: 666 }] },
          virtualport: { parameters: { profileid: 'bob-profile' } },
        },
        {
          name: 'alice',
          default: false,
          vlan: { trunk: true, tags: [{ id: 777 }, { id: 888 }, { id: 999 }] },
          virtualport: { parameters: { profileid: 'alice-profile' } },
        },
      ],
    });
  });

  it('host-bridge-net.xml, and metadata.xml (metadata changes nothing, so it reads the same)', async () => {
    const plain = parseNetworkXml(await fixture('networkxml2xmlin/host-bridge-net.xml'));
    expect(plain).toEqual({
      name: 'host-bridge-net',
      uuid: '81ff0d90-c91e-6742-64da-4a736edb9a8e',
      forwardMode: 'bridge',
      bridge: 'br0',
      portgroups: [],
    });
    expect(parseNetworkXml(await fixture('networkxml2xmlin/metadata.xml'))).toEqual(plain);
  });

  it('isolated-ports.xml: port isolation is kept', async () => {
    expect(parseNetworkXml(await fixture('networkxml2xmlin/isolated-ports.xml'))).toMatchObject({
      bridge: 'br0',
      portIsolated: true,
    });
  });

  it('a trunk portgroup differs from an access one in drift: the trunk flag and every tag count', async () => {
    const xml = await fixture('networkxml2xmlin/openvswitch-net.xml');
    const access = xml.replace("<vlan trunk='yes'>\n      <tag id='777'/>\n      <tag id='888'/>", '<vlan>\n');
    expect(networkDifferences(xml, access)).toEqual([
      'portgroups: expected bob(vlan trunk 666; virtualport (inherited)(profileid=bob-profile)) default, alice(vlan trunk 777,888,999; virtualport (inherited)(profileid=alice-profile)), found bob(vlan trunk 666; virtualport (inherited)(profileid=bob-profile)) default, alice(vlan 999; virtualport (inherited)(profileid=alice-profile))',
    ]);
  });

  it.skipIf(!programsAvailable('virsh'))(
    "equals our reading of libvirt's own normalization of each file (virsh test driver)",
    async () => {
      for (const [path, name] of [
        ['networkxml2xmlin/openvswitch-net.xml', 'openvswitch-net'],
        ['networkxml2xmlin/host-bridge-net.xml', 'host-bridge-net'],
        ['networkxml2xmlin/metadata.xml', 'host-bridge-net'],
        ['networkxml2xmlin/isolated-ports.xml', 'port-isolation-test'],
      ] as const) {
        const ours = parseNetworkXml(await fixture(path));
        expect(parseNetworkXml(await libvirtNormalized(path, name)), path).toEqual(ours);
      }
    },
  );
});

describe('parseNetworkXml refuses what it cannot represent, naming it', () => {
  it.each([
    [
      'networkxml2xmlin/nat-network.xml',
      "found attribute dev at network/forward@dev (a forward device); <ip> at network/ip (libvirt's own addresses and DHCP): each changes the network's behaviour and cannot be represented",
    ],
    [
      'networkxml2xmlin/nat-network-mtu.xml',
      "found attribute dev at network/forward@dev (a forward device); <ip> at network/ip (libvirt's own addresses and DHCP): each changes",
    ],
    [
      'networkxml2xmlin/vepa-net.xml',
      "found <interface> at network/forward/interface (a pool of devices): it changes the network's behaviour and cannot be represented",
    ],
    [
      'networkxml2xmlin/8021Qbh-net.xml',
      'found <interface> at network/forward/interface (a pool of devices); attribute dev at network/forward@dev (a forward device): each changes',
    ],
  ])('%s', async (path, message) => {
    const xml = await fixture(path);
    expect(() => parseNetworkXml(xml)).toThrow(
      `Cannot parse network XML: expected only what a bridge-mode network carries, ${message}`,
    );
  });

  it.each([
    ['an <ip> (addresses and DHCP of libvirt)', '<ip address="192.168.122.1" prefix="24"/>', '<ip> at network/ip'],
    ['QoS', '<bandwidth><inbound average="1000"/></bandwidth>', '<bandwidth> at network/bandwidth (QoS limits)'],
    [
      'a portgroup bandwidth',
      '<portgroup name="p"><bandwidth/></portgroup>',
      '<bandwidth> at network/portgroup/bandwidth',
    ],
    ['a second bridge', '<bridge name="b2"/>', 'a second <bridge> at network/bridge'],
    ['STP on the bridge', '', 'attribute stp at network/bridge@stp'],
  ])('%s', (_name, extra, message) => {
    const base = '<network><name>n</name><forward mode="bridge"/><bridge name="b"/>';
    const xml =
      extra === ''
        ? `${base.replace('<bridge name="b"/>', '<bridge name="b" stp="on"/>')}</network>`
        : `${base}${extra}</network>`;
    expect(() => parseNetworkXml(xml)).toThrow(message);
  });

  it.each([
    ['<vlan><tag id="5000"/></vlan>', 'expected an integer 0-4095 at network/vlan/tag[1]@id, found "5000"'],
    ['<vlan trunk="maybe"><tag id="5"/></vlan>', "expected 'yes' or 'no' at network/vlan@trunk, found \"maybe\""],
    ['<vlan/>', 'expected at least one <tag> in network/vlan, found none'],
    ['<mtu size="x"/>', 'expected an integer 68-65535 at network/mtu@size, found "x"'],
  ])('refuses an unreadable value: %s', (extra, message) => {
    expect(() => parseNetworkXml(`<network><name>n</name>${extra}</network>`)).toThrow(message);
  });

  it('a drifted definition it cannot represent is one difference, naming what was found', () => {
    const site = parseSiteText('networks:\n  secure: { preset: secure }\n');
    const ours = renderNetworkXml(site, site.networks[0]!);
    const withIp = ours.replace('</network>', '  <ip address="192.168.128.1" prefix="17"/>\n</network>');
    expect(networkDifferences(ours, withIp)).toEqual([
      expect.stringMatching(/^definition: expected a bridge-mode <network>, found .*<ip> at network\/ip/),
    ]);
  });
});

describe('parseDomainXml on libvirt test files', () => {
  it('net-openvswitch.xml: a trunk NIC with three tags and its OVS parameters', async () => {
    expect(parseDomainXml(await fixture('qemuxmlconfdata/net-openvswitch.xml'))).toEqual({
      name: 'QEMUGuest1',
      uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809',
      nics: [
        {
          type: 'network',
          mac: '00:11:22:33:44:55',
          network: 'openvswitch-net;plug-bridge-basic',
          vlanTags: [42, 48, 456],
          vlanTrunk: true,
          virtualport: 'openvswitch',
          interfaceId: '09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f',
          model: 'rtl8139',
        },
      ],
    });
  });

  it('net-virtio-teaming-network.xml: both NICs of a failover pair, one MAC', async () => {
    const { nics } = parseDomainXml(await fixture('qemuxmlconfdata/net-virtio-teaming-network.xml'));
    expect(nics.map((n) => [n.mac, n.network, n.model])).toEqual([
      ['00:11:22:33:44:55', 'nat-network;plug-bridge-basic', 'virtio'],
      ['00:11:22:33:44:55', 'hostdev;plug-hostdev-pci', 'virtio'],
    ]);
  });
});
