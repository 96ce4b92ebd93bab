/** The host role's doctor checks: pure functions of {@link HostFacts}. */
import { renderNetworkXml } from '../../libvirt/network-xml.js';
import { parseIpv4Cidr, subnetsOverlap } from '../../site/address.js';
import type { Site } from '../../site/model.js';
import { hostLayout, networkVlans } from '../layout.js';
import type { PlanOptions } from '../model.js';
import { networkDifferences } from '../network-diff.js';
import type { HostFacts } from './host-facts.js';
import { fail, ok, warn, type CheckResult } from './result.js';
import type { RouteFact } from './route-facts.js';

const APPLY = 'ticrypt-net host apply';
/** Where libvirt (and AppArmor) let a hook's interpreter live. */
const ALLOWED_INTERPRETER_DIRS = ['/usr/bin/', '/bin/', '/usr/sbin/', '/sbin/'];

/**
 * Every host check: OVS, bridges and uplinks, VLAN tags, libvirt networks,
 * the hook, the backend, routes. One result per check and subject.
 *
 * @example formatResults(checkHost(site, 'kvm1', await gatherHostFacts(site)))
 */
export function checkHost(
  site: Site,
  host: string | undefined,
  facts: HostFacts,
  options: PlanOptions = {},
): CheckResult[] {
  const results: CheckResult[] = [];
  const { observed } = facts;
  if (!observed.ovsRunning) {
    results.push(
      fail(
        'ovs.running',
        'Open vSwitch',
        'ovs-vsctl cannot reach ovsdb-server',
        'start Open vSwitch (systemctl start openvswitch-switch)',
      ),
    );
  } else {
    results.push(ok('ovs.running', 'Open vSwitch', 'ovsdb-server answers'));
    results.push(...checkBridges(site, host, facts, options), ...checkVmPorts(site, facts));
  }
  results.push(...checkUplinkLinks(site, host, facts), ...checkNetworks(site, facts), ...checkHooks(facts));
  results.push(checkBackendReach(facts), ...checkRoutes(site, facts.routes, () => true));
  return results;
}

function checkBridges(site: Site, host: string | undefined, facts: HostFacts, options: PlanOptions): CheckResult[] {
  const layout = hostLayout(site, host, options);
  const results: CheckResult[] = [];
  for (const bridge of layout.bridges) {
    const found = facts.observed.bridges.some((b) => b.name === bridge);
    results.push(
      found
        ? ok('bridge.present', bridge, 'present')
        : fail('bridge.present', bridge, 'the bridge does not exist', `${APPLY} (creates it with its uplink)`),
    );
  }
  for (const desired of layout.ports) {
    const port = facts.observed.ports.find((p) => p.name === desired.port);
    const id = 'bridge.uplink';
    const want = vlanText(desired.tag, desired.trunks);
    if (port === undefined) {
      results.push(
        fail(
          id,
          desired.port,
          `not a port of ${desired.bridge}`,
          `${APPLY} (adds it to ${desired.bridge} with ${want})`,
        ),
      );
    } else if (port.bridge !== desired.bridge) {
      results.push(
        fail(
          id,
          desired.port,
          `a port of ${port.bridge}, expected ${desired.bridge}`,
          `ovs-vsctl del-port ${port.bridge} ${desired.port}; then ${APPLY}`,
        ),
      );
    } else if (
      port.tag !== desired.tag ||
      [...port.trunks].sort((a, b) => a - b).join(',') !== desired.trunks.join(',')
    ) {
      results.push(
        fail(
          'vlan.uplink',
          desired.port,
          `${vlanText(port.tag, port.trunks)}, expected ${want}`,
          `${APPLY} (or ovs-vsctl set port ${desired.port} ${setText(desired.tag, desired.trunks)})`,
        ),
      );
    } else results.push(ok(id, desired.port, `on ${desired.bridge} with ${want}`));
  }
  return results;
}

/** VM ports: those libvirt made (external_ids:iface-id, or named vnet*), on the site's network bridges. */
function checkVmPorts(site: Site, facts: HostFacts): CheckResult[] {
  const results: CheckResult[] = [];
  for (const network of site.networks) {
    const allowed = networkVlans(network);
    const vmPorts = facts.observed.ports.filter(
      (p) =>
        p.bridge === network.bridge && (p.interfaceExternalIds['iface-id'] !== undefined || /^vnet\d+$/.test(p.name)),
    );
    const wrong = vmPorts.filter((p) => p.tag === undefined || !allowed.includes(p.tag) || p.trunks.length > 0);
    if (wrong.length === 0) {
      results.push(
        ok('vlan.vm-ports', network.bridge, `${vmPorts.length} VM port(s), each tagged ${allowed.join(' or ')}`),
      );
    } else {
      results.push(
        fail(
          'vlan.vm-ports',
          network.bridge,
          `VM port(s) not tagged as the site says (${allowed.join(' or ')}): ${wrong.map((p) => `${p.name} ${vlanText(p.tag, p.trunks)}`).join(', ')}`,
          `check the VMs' <interface> (it must use network ${network.name}); re-tag with ovs-vsctl set port PORT tag=${network.vlan}, or restart the VM`,
        ),
      );
    }
  }
  return results;
}

function checkUplinkLinks(site: Site, host: string | undefined, facts: HostFacts): CheckResult[] {
  const layout = hostLayout(site, host);
  const results: CheckResult[] = [];
  const ifaces = [
    ...layout.vlanInterfaces.map((v) => ({ name: v.interface, vlan: v })),
    ...layout.trunkParents.map((name) => ({ name, vlan: undefined })),
  ];
  for (const { name, vlan } of ifaces) {
    const link = facts.observed.links.find((l) => l.name === name);
    if (link === undefined) {
      results.push(
        fail(
          'uplink.interface',
          name,
          'the interface does not exist',
          vlan === undefined
            ? `create ${name} (the bond carrying the VLANs)`
            : `${APPLY} (creates VLAN ${vlan.vlan} on ${vlan.parent}), or host plan --format nmconnection for NetworkManager`,
        ),
      );
    } else if (!link.up) {
      results.push(fail('uplink.interface', name, 'the interface is down', `ip link set dev ${name} up`));
    } else if (vlan !== undefined && link.addresses.length > 0) {
      results.push(
        warn(
          'uplink.interface',
          name,
          `up, but has address(es) ${link.addresses.join(', ')}: the host sits on a VM network`,
          `ip addr flush dev ${name}, and remove them from its network configuration`,
        ),
      );
    } else results.push(ok('uplink.interface', name, 'up'));
  }
  return results;
}

function checkNetworks(site: Site, facts: HostFacts): CheckResult[] {
  const results: CheckResult[] = [];
  for (const network of site.networks) {
    const found = facts.observed.networks.find((n) => n.name === network.name);
    const name = network.name;
    if (found === undefined) {
      results.push(
        fail(
          'network.defined',
          name,
          'not defined in libvirt',
          `${APPLY} (or ticrypt-net render network ${name} > ${name}.xml; virsh net-define ${name}.xml)`,
        ),
      );
      continue;
    }
    const differences = networkDifferences(renderNetworkXml(site, network), found.xml);
    results.push(
      differences.length === 0
        ? ok('network.definition', name, 'equal to the rendered definition (UUID included)')
        : fail(
            'network.definition',
            name,
            `differs from the rendered definition: ${differences.join('; ')}`,
            found.connections > 0
              ? `shut down or migrate its ${found.connections} VM interface(s), then ${APPLY}`
              : APPLY,
          ),
    );
    results.push(
      found.active
        ? ok('network.active', name, 'active')
        : fail('network.active', name, 'defined but not active', `virsh -c qemu:///system net-start ${name}`),
    );
    results.push(
      found.autostart
        ? ok('network.autostart', name, 'autostarts')
        : warn(
            'network.autostart',
            name,
            'not autostarted: it stays down after a libvirtd restart or reboot',
            `virsh -c qemu:///system net-autostart ${name}`,
          ),
    );
  }
  return results;
}

function checkHooks(facts: HostFacts): CheckResult[] {
  const installed = facts.hooks.filter((h) => h.exists);
  if (installed.length === 0) {
    return [
      fail(
        'hook.installed',
        facts.hooks.map((h) => h.path).join(' or '),
        'no ticrypt-net hook installed: VMs start without registering',
        'install the hook (ticrypt-net hook install), then restart libvirtd',
      ),
    ];
  }
  const results: CheckResult[] = [];
  for (const hook of installed) {
    results.push(ok('hook.installed', hook.path, 'present'));
    results.push(
      hook.executable
        ? ok('hook.executable', hook.path, 'executable')
        : fail('hook.executable', hook.path, 'not executable: libvirt skips it', `chmod 755 ${hook.path}`),
    );
    const [program, argument] = hook.interpreter ?? [];
    if (program === undefined) {
      results.push(
        warn('hook.interpreter', hook.path, 'no #! line', `start it with #!/bin/sh (libvirt execs it directly)`),
      );
    } else if (!ALLOWED_INTERPRETER_DIRS.some((dir) => program.startsWith(dir))) {
      results.push(
        fail(
          'hook.interpreter',
          hook.path,
          `interpreter ${program} is outside /usr/bin, /bin, /usr/sbin, /sbin: AppArmor refuses it under libvirtd`,
          'reinstall the hook with an interpreter under /usr/bin (e.g. /usr/bin/node or a /bin/sh wrapper)',
        ),
      );
    } else if (program.endsWith('/env')) {
      results.push(
        warn(
          'hook.interpreter',
          hook.path,
          `#!${program} ${argument ?? ''} finds its program through libvirt's reduced PATH`,
          `name the interpreter by its full path (e.g. #!/usr/bin/${argument ?? 'node'})`,
        ),
      );
    } else results.push(ok('hook.interpreter', hook.path, `interpreter ${program}`));
    if (facts.libvirtdStartMs === undefined) {
      results.push(fail('hook.loaded', hook.path, 'libvirtd is not running', 'start libvirtd'));
    } else if (hook.mtimeMs !== undefined && hook.mtimeMs > facts.libvirtdStartMs) {
      results.push(
        fail(
          'hook.loaded',
          hook.path,
          `changed after libvirtd started (${new Date(hook.mtimeMs).toISOString()} > ${new Date(facts.libvirtdStartMs).toISOString()}): libvirtd reads hooks only at start`,
          'restart libvirtd (systemctl restart libvirtd): running VMs keep running',
        ),
      );
    } else results.push(ok('hook.loaded', hook.path, 'libvirtd started after it was installed'));
  }
  return results;
}

function checkBackendReach(facts: HostFacts): CheckResult {
  const { hookConfig, backend } = facts;
  const id = 'backend.reachable';
  if (!hookConfig.exists)
    return warn(
      id,
      hookConfig.path,
      'no hook configuration: cannot tell whether the backend is reachable',
      `write ${hookConfig.path} (backendUrl, tokenFile) as the hook's installer does`,
    );
  if (hookConfig.error !== undefined)
    return fail(id, hookConfig.path, `the hook configuration is ${hookConfig.error}`, `fix ${hookConfig.path}`);
  if (backend === undefined)
    return fail(
      id,
      hookConfig.path,
      'the hook configuration names no backend URL',
      `set backendUrl in ${hookConfig.path}`,
    );
  if (backend.ok) return ok(id, backend.url, `reachable with this host's token (${backend.message})`);
  const fix =
    backend.outcome === 'refused'
      ? "issue this host a token on the backend (ticrypt-net backend token add) and write it to the hook's tokenFile"
      : backend.outcome === 'no-token'
        ? `write this host's token to the tokenFile named in ${hookConfig.path}`
        : 'check the backend service runs, and the route and firewall from this host to its management address';
  return fail(id, backend.url, backend.message, fix);
}

/**
 * VM subnets overlapping the machine's routes: on a host, any overlap means
 * the host reaches into (or hijacks) a VM network; `expected` says which
 * routes are the machine's own legitimate ones (the backend's gateway interfaces).
 */
export function checkRoutes(
  site: Site,
  routes: readonly RouteFact[],
  unexpected: (network: string, route: RouteFact) => boolean,
): CheckResult[] {
  return site.networks.map((network) => {
    const subnet = parseIpv4Cidr(network.subnet);
    const overlapping = routes.filter((route) => {
      if (route.dst === 'default') return false;
      const dst = parseIpv4Cidr(route.dst);
      return (
        subnet !== undefined && dst !== undefined && subnetsOverlap(subnet, dst) && unexpected(network.name, route)
      );
    });
    return overlapping.length === 0
      ? ok('routes.overlap', network.subnet, `no route of this machine overlaps network ${network.name}`)
      : fail(
          'routes.overlap',
          network.subnet,
          `network ${network.name} overlaps this machine's route(s) ${overlapping.map((r) => `${r.dst}${r.dev === undefined ? '' : ` dev ${r.dev}`}`).join(', ')}: traffic to those VMs goes astray`,
          'change the site subnet, or remove the conflicting address/route from this machine',
        );
  });
}

function vlanText(tag: number | undefined, trunks: readonly number[]): string {
  if (tag === undefined && trunks.length === 0) return 'no VLAN (untagged, all VLANs)';
  return [tag === undefined ? '' : `tag ${tag}`, trunks.length === 0 ? '' : `trunks ${trunks.join(',')}`]
    .filter(Boolean)
    .join(', ');
}

function setText(tag: number | undefined, trunks: readonly number[]): string {
  return [tag === undefined ? '' : `tag=${tag}`, trunks.length === 0 ? '' : `trunks=${trunks.join(',')}`]
    .filter(Boolean)
    .join(' ');
}
