import {
  describeVirtualport,
  describeVlan,
  parseNetworkXml,
  type LibvirtNetwork,
  type LibvirtPortgroup,
} from '../libvirt/network-parse.js';

/**
 * How a libvirt network definition differs from the rendered one, field by
 * field (`uuid: expected ..., found ...`); empty when they agree. The UUID
 * counts: a network defined by hand with another UUID is not the site's.
 * Every field the parser keeps is compared; a definition it cannot represent
 * (an `<ip>`, a `<bandwidth>`, ...) is one difference naming what it found.
 */
export function networkDifferences(expectedXml: string, foundXml: string): string[] {
  const expected = parseNetworkXml(expectedXml);
  let found: LibvirtNetwork;
  try {
    found = parseNetworkXml(foundXml);
  } catch (error) {
    return [`definition: expected a bridge-mode <network>, found ${(error as Error).message}`];
  }
  const out: string[] = [];
  const fields: [string, (n: LibvirtNetwork) => string][] = [
    ['name', (n) => n.name],
    ['uuid', (n) => show(n.uuid)],
    ['forwardMode', (n) => show(n.forwardMode)],
    ['bridge', (n) => show(n.bridge)],
    ['virtualport', (n) => describeVirtualport(n.virtualport)],
    ['vlan', (n) => describeVlan(n.vlan)],
    ['mtu', (n) => show(n.mtu)],
    ['port isolated', (n) => show(n.portIsolated)],
    ['trustGuestRxFilters', (n) => show(n.trustGuestRxFilters)],
    ['portgroups', (n) => n.portgroups.map(describeGroup).join(', ') || 'none'],
  ];
  for (const [field, text] of fields) {
    if (text(expected) !== text(found)) out.push(`${field}: expected ${text(expected)}, found ${text(found)}`);
  }
  return out;
}

function describeGroup(group: LibvirtPortgroup): string {
  const parts = [
    group.vlan === undefined ? '' : `vlan ${describeVlan(group.vlan)}`,
    group.virtualport === undefined ? '' : `virtualport ${describeVirtualport(group.virtualport)}`,
    group.trustGuestRxFilters === undefined ? '' : `trustGuestRxFilters ${String(group.trustGuestRxFilters)}`,
  ].filter(Boolean);
  return `${group.name}${parts.length === 0 ? '' : `(${parts.join('; ')})`}${group.default ? ' default' : ''}`;
}

function show(value: string | number | boolean | undefined): string {
  return value === undefined ? 'none' : String(value);
}
