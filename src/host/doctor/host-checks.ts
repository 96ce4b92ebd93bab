/**
 * The host role's doctor checks: pure functions of {@link HostFacts}. What
 * `host apply` manages is judged by the planner's pieces (`./plan-checks.ts`);
 * the rest (VM ports' tags, the hooks, the backend, routes) here.
 * May not: gather facts (`./host-facts.ts` does) or re-judge what the planner judges.
 */
import { parseIpv4Cidr, subnetsOverlap } from '../../site/address.js';
import type { Site } from '../../site/model.js';
import { hostLayout, networkVlans } from '../layout.js';
import { planHost, reshapes } from '../plan.js';
import type { HostFacts } from './host-facts.js';
import {
  bridgeChecks,
  bridgePolicyChecks,
  flowChecks,
  linkChecks,
  networkChecks,
  ovsCheck,
  portChecks,
  vlanText,
  type PlanCheckOptions,
} from './plan-checks.js';
import { fail, ok, warn, type CheckResult } from './result.js';
import type { RouteFact } from './route-facts.js';

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
  options: PlanCheckOptions = {},
): CheckResult[] {
  const { observed } = facts;
  const layout = hostLayout(site, host, options);
  const results: CheckResult[] = [ovsCheck(observed)];
  if (observed.ovsRunning) {
    results.push(
      ...bridgeChecks(layout, observed, options),
      ...bridgePolicyChecks(layout, observed),
      ...portChecks(layout, observed),
      ...checkVmPorts(site, facts),
      ...flowChecks(observed, reshapes(planHost(site, host, observed, options))),
    );
  }
  results.push(...linkChecks(layout, observed), ...networkChecks(site, layout, observed, options));
  results.push(...checkHooks(facts), checkBackendReach(facts), ...checkRoutes(site, facts.routes, () => true));
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
    if (hook.parts !== undefined) {
      const missing = hook.parts.filter((part) => !part.present);
      results.push(
        missing.length === 0
          ? ok('hook.parts', hook.path, hook.parts.map((part) => `${part.name} ${part.path}`).join(', '))
          : fail(
              'hook.parts',
              hook.path,
              `missing ${missing.map((part) => `${part.name} ${part.path}`).join(', ')}: the hook logs one line and exits 0, so VMs start unregistered (no access)`,
              'ticrypt-net hook install (copies the bundle to its stable path and names node), then restart libvirtd',
            ),
      );
    }
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
