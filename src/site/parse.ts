import type { z } from 'zod';
import { SiteError, type SiteIssue } from '../errors/site-error.js';
import { rangeSize } from './address.js';
import { checkNetworks } from './checks.js';
import { fromZodIssues, formatPath } from './issues.js';
import type { Backend, Host, Network, Site, SshAccess } from './model.js';
import { applyPreset, PRESETS } from './presets.js';
import { isInterfaceName } from './primitives.js';
import { NetworkSchema, SiteSchema, SshSchema, WELL_KNOWN_KINDS } from './schema.js';

const KIND_POLICIES: Record<string, Pick<Network, 'egress' | 'dns'>> = {
  secure: { egress: 'allow-list', dns: 'controlled' },
  service: { egress: 'open', dns: 'open' },
  datain: { egress: 'open', dns: 'open' },
};

/**
 * Validate a site description (the parsed YAML, or any value) and resolve it:
 * presets merged, defaults filled, cross-field rules checked.
 *
 * Every problem is collected before anything is thrown: field shapes first
 * (each named by its path), then, when the shapes are sound, the rules
 * between fields and networks.
 *
 * @param input - The site as data; `undefined` or `null` (an empty file) means all defaults.
 * @param source - Where it came from, for the error message.
 * @throws {SiteError} `E_SITE_INVALID`, with every issue.
 * @example
 * const site = parseSite({ networks: { secure: { preset: 'secure', vlan: 2081 } } });
 * site.networks[0].bridge; // 'br-secure'
 */
export function parseSite(input: unknown, source?: string): Site {
  const outcome = checkSite(input);
  if (!outcome.ok) throw new SiteError(outcome.issues, source);
  return outcome.site;
}

/** The result of {@link checkSite}: the site, or every issue found. */
export type SiteCheck = { ok: true; site: Site } | { ok: false; issues: SiteIssue[] };

/** Like {@link parseSite}, but returns the issues instead of throwing. Never throws. */
export function checkSite(input: unknown): SiteCheck {
  const top = SiteSchema.safeParse(input ?? {}, { reportInput: true });
  if (!top.success) return { ok: false, issues: fromZodIssues(top.error.issues) };
  const entries: [string, unknown][] = top.data.networks
    ? Object.entries(top.data.networks)
    : Object.keys(PRESETS).map((name) => [name, { preset: name }]);
  const issues: SiteIssue[] = [];
  if (entries.length === 0) issues.push({ path: 'networks', message: 'expected at least one network, found none' });

  const backend: Backend = top.data.backend;
  const networks: Network[] = [];
  for (const [name, entry] of entries) {
    const parsed = NetworkSchema.safeParse(applyPreset(entry), { reportInput: true });
    if (!parsed.success) {
      issues.push(...fromZodIssues(parsed.error.issues, ['networks', name]));
      continue;
    }
    const resolved = resolveNetwork(name, parsed.data, backend, issues);
    if (resolved) networks.push(resolved);
  }
  // Cross-field rules run on every network whose shape was sound, so one pass reports everything.
  issues.push(...checkNetworks(networks, backend));
  if (issues.length > 0) return { ok: false, issues };

  const hosts: Host[] = Object.entries(top.data.hosts).map(([name, host]) =>
    host.uplink === undefined ? { name } : { name, uplink: host.uplink },
  );
  return { ok: true, site: { name: top.data.name, backend, hosts, networks } };
}

function resolveNetwork(
  name: string,
  data: z.output<typeof NetworkSchema>,
  backend: Backend,
  issues: SiteIssue[],
): Network | undefined {
  const at = (...keys: PropertyKey[]) => formatPath(['networks', name, ...keys]);
  const policies = KIND_POLICIES[data.kind];
  const egress = data.egress ?? policies?.egress;
  const dns = data.dns ?? policies?.dns;
  if (egress === undefined || dns === undefined) {
    issues.push({
      path: at(egress === undefined ? 'egress' : 'dns'),
      message: `expected a declared policy for custom kind ${JSON.stringify(data.kind)} (well-known kinds: ${WELL_KNOWN_KINDS.join(', ')}), found nothing`,
    });
    return undefined;
  }
  const uplinkInterface =
    data.uplink.interface ?? (data.uplink.mode === 'vlan' ? `${data.uplink.parent}.${data.vlan}` : data.uplink.parent);
  const gatewayInterface = data.gatewayInterface ?? `${backend.trunk}.${data.vlan}`;
  let sound = true;
  for (const [value, keys, from] of [
    [uplinkInterface, ['uplink', 'interface'], 'uplink.parent and vlan'],
    [gatewayInterface, ['gatewayInterface'], 'backend.trunk and vlan'],
  ] as const) {
    if (!isInterfaceName(value)) {
      sound = false;
      issues.push({
        path: at(...keys),
        message: `expected an interface name of at most 15 characters, found ${JSON.stringify(value)} (derived from ${from}; set ${keys.join('.')} explicitly)`,
      });
    }
  }
  if (!sound) return undefined;
  const network: Network = {
    name,
    kind: data.kind,
    bridge: data.bridge,
    vlan: data.vlan,
    uplink: { parent: data.uplink.parent, mode: data.uplink.mode, interface: uplinkInterface },
    subnet: data.subnet,
    gateway: data.gateway,
    gatewayInterface,
    dhcp: {
      start: data.dhcp.start,
      end: data.dhcp.end,
      leaseTime: data.dhcp.leaseTime,
      size: rangeSize(data.dhcp.start, data.dhcp.end),
      ...(data.dhcp.bootFile === undefined ? {} : { bootFile: data.dhcp.bootFile }),
    },
    egress,
    dns,
    placement: data.placement,
    peers: data.peers ?? (egress === 'allow-list' ? 'gateway' : 'all'),
    ipv6: data.ipv6,
    audit: data.audit ?? (egress === 'allow-list' ? 'records' : 'counts'),
    portgroups: data.portgroups.map((g) => ({ name: g.name, vlan: g.vlan ?? data.vlan, default: g.default })),
    reservations: data.reservations.map((r) =>
      r.name === undefined ? { mac: r.mac, ip: r.ip } : { ...r, name: r.name },
    ),
  };
  const ssh = resolveSsh(data);
  return {
    ...network,
    ...(data.mtu === undefined ? {} : { mtu: data.mtu }),
    ...(data.gatewayMac === undefined ? {} : { gatewayMac: data.gatewayMac }),
    ...(ssh === undefined ? {} : { ssh }),
  };
}

/** A network's SSH access: on for kind `secure` unless `enabled: false`, elsewhere only when asked for. */
function resolveSsh(data: z.output<typeof NetworkSchema>): SshAccess | undefined {
  const given = data.ssh;
  const enabled = given?.enabled ?? (given !== undefined || data.kind === 'secure');
  if (!enabled) return undefined;
  const settings = given ?? SshSchema.parse({});
  return {
    ports: settings.ports,
    ...(settings.address === undefined ? {} : { address: settings.address }),
    sources: settings.sources,
    quarantine: settings.quarantine,
  };
}

/** The site every command uses when no site file is given: the three presets. */
export function defaultSite(): Site {
  return parseSite(undefined);
}
