import type { NetworkInput } from './schema.js';

/**
 * The seed's three networks, exactly as DESIGN.md's table gives them. A site
 * file selects one with `preset: NAME` and overrides any field; a site file
 * without `networks` gets all three.
 */
export const PRESETS = {
  secure: {
    kind: 'secure',
    bridge: 'br-secure',
    vlan: 1081,
    uplink: { parent: 'bond0', mode: 'vlan' },
    subnet: '192.168.128.0/17',
    gateway: '192.168.128.1',
    dhcp: { start: '192.168.129.1', end: '192.168.255.254', leaseTime: '12h' },
    egress: 'allow-list',
    dns: 'controlled',
  },
  service: {
    kind: 'service',
    bridge: 'br-service',
    vlan: 1082,
    uplink: { parent: 'bond0', mode: 'vlan' },
    subnet: '192.168.122.0/24',
    gateway: '192.168.122.1',
    dhcp: { start: '192.168.122.3', end: '192.168.122.254', leaseTime: '12h' },
    egress: 'open',
    dns: 'open',
  },
  datain: {
    kind: 'datain',
    bridge: 'br-datain',
    vlan: 1083,
    uplink: { parent: 'bond0', mode: 'vlan' },
    subnet: '192.168.123.0/24',
    gateway: '192.168.123.1',
    dhcp: { start: '192.168.123.3', end: '192.168.123.254', leaseTime: '12h' },
    egress: 'open',
    dns: 'open',
  },
} as const satisfies Record<string, NetworkInput>;

/** The name of a preset network. */
export type PresetName = keyof typeof PRESETS;

/** Whether `name` names a preset. */
export function isPresetName(name: unknown): name is PresetName {
  return typeof name === 'string' && Object.hasOwn(PRESETS, name);
}

/**
 * Merge a network entry over its preset (`preset: secure`): the entry's fields
 * win, and `uplink` and `dhcp` merge one level deep. Anything else is returned as is.
 */
export function applyPreset(entry: unknown): unknown {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return entry;
  const record = entry as Record<string, unknown>;
  if (!isPresetName(record.preset)) return entry;
  const preset: Record<string, unknown> = PRESETS[record.preset];
  const merged: Record<string, unknown> = { ...preset, ...record };
  for (const key of ['uplink', 'dhcp']) {
    const own = record[key];
    if (typeof own === 'object' && own !== null && !Array.isArray(own)) {
      merged[key] = { ...(preset[key] as object), ...own };
    }
  }
  return merged;
}
