import { parseNetworkXml, type LibvirtNetwork } from '../libvirt/network-parse.js';

/**
 * How a libvirt network definition differs from the rendered one, field by
 * field (`uuid: expected ..., found ...`); empty when they agree. The UUID
 * counts: a network defined by hand with another UUID is not the site's.
 * Text that is not a network definition is one difference.
 */
export function networkDifferences(expectedXml: string, foundXml: string): string[] {
  const expected = parseNetworkXml(expectedXml);
  let found: LibvirtNetwork;
  try {
    found = parseNetworkXml(foundXml);
  } catch (error) {
    return [`definition: expected a <network>, found ${(error as Error).message}`];
  }
  const out: string[] = [];
  const fields = ['name', 'uuid', 'forwardMode', 'bridge', 'virtualport', 'vlan'] as const;
  for (const field of fields) {
    if (expected[field] !== found[field]) {
      out.push(`${field}: expected ${show(expected[field])}, found ${show(found[field])}`);
    }
  }
  const groups = (network: LibvirtNetwork) =>
    network.portgroups
      .map((g) => `${g.name}${g.vlan === undefined ? '' : `(vlan ${g.vlan})`}${g.default ? ' default' : ''}`)
      .join(', ') || 'none';
  if (groups(expected) !== groups(found)) out.push(`portgroups: expected ${groups(expected)}, found ${groups(found)}`);
  return out;
}

function show(value: string | number | undefined): string {
  return value === undefined ? 'none' : String(value);
}
