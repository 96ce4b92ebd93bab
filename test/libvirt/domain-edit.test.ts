import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AllowEntry } from '../../src/protocol/api.js';
import { addDomainInterface, domainInterfaceMacs, removeDomainInterface } from '../../src/libvirt/domain-edit.js';
import { parseDomainXml } from '../../src/libvirt/domain-nics.js';
import { renderInterfaceXml } from '../../src/libvirt/interface-xml.js';
import { readDomainAllowList, renderAllowMetadata, setDomainAllowList } from '../../src/libvirt/metadata.js';
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

const arbEntry: fc.Arbitrary<AllowEntry> = fc.oneof(
  fc.record({
    type: fc.constant('address' as const),
    address: fc
      .tuple(
        fc.nat(255),
        fc.nat(255),
        fc.nat(255),
        fc.nat(255),
        fc.option(fc.integer({ min: 8, max: 32 }), { nil: undefined }),
      )
      .map(([a, b, c, d, len]) => `${a}.${b}.${c}.${d}${len === undefined ? '' : `/${len}`}`),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    ports: fc
      .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 100 }))
      .map(([from, span]) => ({ from, to: Math.min(65535, from + span) })),
  }),
  fc.record({
    type: fc.constant('domain' as const),
    domain: fc.domain().map((d) => d.toLowerCase()),
    protocol: fc.constantFrom('icmp' as const, 'any' as const, 'tcp' as const),
  }),
);

describe('allow-list in <metadata>', () => {
  it('renders the project namespace', () => {
    expect(
      renderAllowMetadata([
        { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } },
      ]),
    ).toBe(
      '<ticrypt:net xmlns:ticrypt="https://ticrypt.org/xmlns/ticrypt-net/1.0">\n  <ticrypt:allow protocol="tcp" address="203.0.113.10" ports="443"/>\n</ticrypt:net>\n',
    );
  });

  it('round-trips any allow-list, and setting again replaces rather than adds (property)', () => {
    fc.assert(
      fc.property(fc.array(arbEntry, { maxLength: 6 }), fc.array(arbEntry, { maxLength: 3 }), (first, second) => {
        const once = setDomainAllowList(DOMAIN, first);
        expect(readDomainAllowList(once)).toEqual(first);
        const twice = setDomainAllowList(once, second);
        expect(readDomainAllowList(twice)).toEqual(second);
        expect(twice.match(/<ticrypt:net/g)).toHaveLength(1);
        expect(domainInterfaceMacs(twice)).toEqual(['52:54:00:aa:bb:01']);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps foreign metadata and reads any prefix bound to the namespace', () => {
    const withForeign = DOMAIN.replace(
      '  <memory',
      "  <metadata>\n    <app:info xmlns:app='https://example.org/app'>keep</app:info>\n    <tn:net xmlns:tn='https://ticrypt.org/xmlns/ticrypt-net/1.0'><tn:allow protocol='udp' domain='ntp.org' ports='123'/></tn:net>\n  </metadata>\n  <memory",
    );
    expect(readDomainAllowList(withForeign)).toEqual([
      { type: 'domain', domain: 'ntp.org', protocol: 'udp', ports: { from: 123, to: 123 } },
    ]);
    const replaced = setDomainAllowList(withForeign, []);
    expect(replaced).toContain("<app:info xmlns:app='https://example.org/app'>keep</app:info>");
    expect(replaced).not.toContain('tn:net');
    expect(readDomainAllowList(replaced)).toEqual([]);
    expect(readDomainAllowList(DOMAIN)).toBeUndefined();
  });

  it('rejects malformed entries with the reason', () => {
    const bad = setDomainAllowList(DOMAIN, [{ type: 'address', address: '1.2.3.4', protocol: 'tcp' }]).replace(
      'protocol="tcp"',
      'protocol="gre"',
    );
    expect(() => readDomainAllowList(bad)).toThrow(
      "metadata allow entry 1: expected protocol 'tcp', 'udp', 'icmp' or 'any', found \"gre\"",
    );
  });
});

describe.skipIf(!programsAvailable('virsh', 'virt-xml-validate'))('libvirt accepts the edited domains', () => {
  it('virt-xml-validate and the virsh test driver accept added NICs, removals and metadata', async () => {
    const entries: AllowEntry[] = [
      { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } },
      { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 8000, to: 8100 } },
    ];
    const added = addDomainInterface(DOMAIN, iface('52:54:00:12:34:56'));
    const withMeta = setDomainAllowList(added, entries);
    const removed = removeDomainInterface(withMeta, '52:54:00:aa:bb:01');
    const noDevices = setDomainAllowList(
      "<domain type='qemu'>\n  <name>vm-b</name>\n  <memory unit='MiB'>64</memory>\n  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n</domain>\n",
      entries,
    );
    const docs = [added, withMeta, removed, noDevices].map((d, i) =>
      d
        .replace(/<name>[^<]+<\/name>/, `<name>vm-${i}</name>`)
        .replace(/<uuid>[^<]+<\/uuid>/, `<uuid>2b1f2c44-6f58-4b6f-9d35-6a6a8b7f6c0${i}</uuid>`),
    );
    expect(await libvirtRejects({ networks: [], domains: docs })).toEqual([]);
  });
});
