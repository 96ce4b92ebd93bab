import { describe, expect, it } from 'vitest';
import { addDomainInterface, domainInterfaceMacs, removeDomainInterface } from '../../src/libvirt/domain-edit.js';
import { parseDomainXml } from '../../src/libvirt/domain-nics.js';
import { renderInterfaceXml } from '../../src/libvirt/interface-xml.js';
import { defaultSite } from '../../src/site/parse.js';
import { findNetwork } from '../../src/site/lookup.js';
import { libvirtRejects } from '../support/libvirt-judges.js';
import { programsAvailable } from '../lab/prereq.js';

const site = defaultSite();
const secure = findNetwork(site, 'secure');

/** A domain with things a parse-and-serialize round trip would lose: a comment, attribute quoting, odd spacing, CDATA. */
const DOMAIN = `<?xml version="1.0"?>
<!-- launcher: vm-42 -->
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>vm-42</name>
  <uuid>2b1f2c44-6f58-4b6f-9d35-6a6a8b7f6c01</uuid>
  <description><![CDATA[a <secure> VM]]></description>
  <memory unit='MiB'>64</memory>
  <vcpu   placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <!-- <interface type='network'><mac address='52:54:00:00:00:99'/></interface> -->
    <interface type='network'>
      <mac address='52:54:00:aa:bb:01'/>
      <source network='service'/>
      <model type='virtio'/>
    </interface>
    <console type='pty'/>
  </devices>
</domain>
`;

const iface = (mac: string) => renderInterfaceXml({ network: secure, mac });

describe('addDomainInterface / removeDomainInterface', () => {
  it('adds the NIC as the last device and keeps every other byte', () => {
    const added = addDomainInterface(DOMAIN, iface('52:54:00:12:34:56'));
    expect(domainInterfaceMacs(added)).toEqual(['52:54:00:aa:bb:01', '52:54:00:12:34:56']);
    expect(added).toContain(
      `    <console type='pty'/>\n    <interface type="network">\n      <mac address="52:54:00:12:34:56"/>`,
    );
    expect(added.replace(/\n {4}<interface type="network">\n[\s\S]*?<\/interface>(?=\n {2}<\/devices>)/, '')).toBe(
      DOMAIN,
    );
    expect(parseDomainXml(added).nics[1]).toMatchObject({ network: 'secure', vlanTags: [1081] });
  });

  it('removing what was added gives the original document back', () => {
    expect(removeDomainInterface(addDomainInterface(DOMAIN, iface('52:54:00:12:34:56')), '52:54:00:12:34:56')).toBe(
      DOMAIN,
    );
  });

  it('removes by MAC (any case), ignoring interfaces inside comments', () => {
    const removed = removeDomainInterface(DOMAIN, '52:54:00:AA:BB:01');
    expect(domainInterfaceMacs(removed)).toEqual([]);
    expect(removed).toContain("<!-- <interface type='network'><mac address='52:54:00:00:00:99'/></interface> -->");
    expect(removed).not.toContain('52:54:00:aa:bb:01');
    expect(() => removeDomainInterface(DOMAIN, '52:54:00:00:00:99')).toThrow(
      'Cannot remove interface: the domain has no NIC with MAC 52:54:00:00:00:99',
    );
  });

  it('refuses a duplicate MAC and a non-domain', () => {
    expect(() => addDomainInterface(DOMAIN, iface('52:54:00:AA:BB:01'))).toThrow(
      'already has a NIC with MAC 52:54:00:aa:bb:01',
    );
    expect(() => addDomainInterface('<network/>', iface('52:54:00:12:34:56'))).toThrow(
      'expected a <domain> root element',
    );
  });

  it('creates <devices> when the domain has none, and expands <devices/>', () => {
    const bare = "<domain type='qemu'>\n  <name>x</name>\n</domain>\n";
    expect(domainInterfaceMacs(addDomainInterface(bare, iface('52:54:00:12:34:56')))).toEqual(['52:54:00:12:34:56']);
    const empty = "<domain type='qemu'>\n  <name>x</name>\n  <devices/>\n</domain>\n";
    expect(domainInterfaceMacs(addDomainInterface(empty, iface('52:54:00:12:34:56')))).toEqual(['52:54:00:12:34:56']);
  });
});

describe.skipIf(!programsAvailable('virsh', 'virt-xml-validate'))('libvirt accepts the edited domains', () => {
  it('virt-xml-validate and the virsh test driver accept added NICs and removals', async () => {
    const added = addDomainInterface(DOMAIN, iface('52:54:00:12:34:56'));
    const removed = removeDomainInterface(added, '52:54:00:aa:bb:01');
    const docs = [added, removed].map((d, i) =>
      d
        .replace(/<name>[^<]+<\/name>/, `<name>vm-${i}</name>`)
        .replace(/<uuid>[^<]+<\/uuid>/, `<uuid>2b1f2c44-6f58-4b6f-9d35-6a6a8b7f6c0${i}</uuid>`),
    );
    expect(await libvirtRejects({ networks: [], domains: docs })).toEqual([]);
  });
});
