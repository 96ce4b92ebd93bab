/**
 * Doctor's checks of what `backend apply` manages (the gateway interfaces and
 * their addresses, the uplink and management address, forwarding and the
 * gateway sysctls, the boot-time settings file, the systemd unit), built from
 * the backend planner's own pieces: a subject is OK exactly when the plan has
 * nothing to do for it; a blocked action is a FAIL with the planner's reason
 * and fix; any other action is a FAIL whose fix is `backend apply`, except
 * the boot-time file (a WARN: it works until the next boot).
 *
 * For: `./backend-checks.ts`. May not: look at the backend other than through
 * the planner.
 */
import { backendActionSubject, describeBackendAction } from '../../backend/setup/describe.js';
import type { BackendAction, BackendPlanOptions, ObservedBackend } from '../../backend/setup/model.js';
import {
  BACKEND_UNIT,
  gatewayInterfaces,
  planEdges,
  planGatewayLinks,
  planSysctlFile,
  planSysctls,
  planUnit,
  SYSCTL_FILE,
} from '../../backend/setup/plan.js';
import { interfaceKey, interfaceSettings, IP_FORWARD } from '../../backend/sysctls.js';
import type { Site } from '../../site/model.js';
import { fail, ok, warn, type CheckResult } from './result.js';

const APPLY = 'ticrypt-net backend apply';

function blocked(id: string, subject: string, action: Extract<BackendAction, { kind: 'blocked' }>): CheckResult {
  return fail(id, subject, action.reason, action.fix);
}

/** The actions' words, joined: what `backend apply` would do for a subject. */
function would(actions: readonly BackendAction[]): string {
  return actions.map(describeBackendAction).join('; ');
}

/** `gateway.interface`: each network's interface exists, is up, at its MTU, with the gateway address and only it. */
export function gatewayChecks(site: Site, observed: ObservedBackend): CheckResult[] {
  const actions = planGatewayLinks(site, observed);
  const results: CheckResult[] = [];
  const names = new Set<string>();
  for (const gw of gatewayInterfaces(site)) {
    names.add(`interface ${gw.interface}`);
    const mine = actions.filter((a) => backendActionSubject(a) === `interface ${gw.interface}`);
    const stop = mine.find((a) => a.kind === 'blocked');
    const present = observed.links.some((l) => l.name === gw.interface);
    if (stop?.kind === 'blocked') results.push(blocked('gateway.interface', gw.interface, stop));
    else if (!present && mine.length === 0) {
      // Nothing planned for it: what it would hang on is blocked (reported below).
      results.push(
        fail(
          'gateway.interface',
          gw.interface,
          `the interface does not exist, and cannot be created: its parent ${gw.vlan?.parent ?? ''} is missing`,
          `create ${gw.vlan?.parent ?? 'its parent'} (see below), then ${APPLY}`,
        ),
      );
    } else if (mine.length === 0) {
      results.push(ok('gateway.interface', gw.interface, `up with ${gw.address} only (network ${gw.network})`));
    } else if (mine.some((a) => a.kind === 'create-vlan-interface')) {
      results.push(
        fail('gateway.interface', gw.interface, 'the interface does not exist', `${APPLY} (${would(mine)})`),
      );
    } else results.push(fail('gateway.interface', gw.interface, `differs: ${APPLY} would ${would(mine)}`, APPLY));
  }
  // Blocks on other subjects (the trunk missing, a parent's MTU too small).
  for (const action of actions) {
    if (action.kind === 'blocked' && !names.has(action.subject)) {
      results.push(blocked('gateway.interface', action.subject.replace(/^interface /, ''), action));
    }
  }
  return results;
}

/** `backend.uplink` and `backend.management`: the way out exists; the API's address is local. */
export function edgeChecks(site: Site, observed: ObservedBackend): CheckResult[] {
  const actions = planEdges(site, observed);
  const find = (subject: string) => actions.find((a) => a.kind === 'blocked' && a.subject === subject);
  const { uplink, management } = site.backend;
  const up = find(`interface ${uplink}`);
  const mgmt = find(`address ${management.address}`);
  return [
    up?.kind === 'blocked' ? blocked('backend.uplink', uplink, up) : ok('backend.uplink', uplink, 'present'),
    mgmt?.kind === 'blocked'
      ? blocked('backend.management', management.address, mgmt)
      : ok('backend.management', management.address, 'on an interface of the backend'),
  ];
}

/** `sysctl.ip-forward` and `sysctl.gateway`: forwarding on; each gateway interface's reverse-path and ARP settings. */
export function sysctlChecks(site: Site, observed: ObservedBackend): CheckResult[] {
  const actions = planSysctls(site, observed);
  const forward = actions.find((a) => backendActionSubject(a) === `sysctl ${IP_FORWARD.key}`);
  const results: CheckResult[] = [
    forward === undefined
      ? ok('sysctl.ip-forward', 'net.ipv4.ip_forward', '1')
      : fail(
          'sysctl.ip-forward',
          'net.ipv4.ip_forward',
          `${forward.kind === 'set-sysctl' && forward.was !== undefined ? forward.was : 'unreadable'}: the backend forwards nothing`,
          `${APPLY} (or sysctl -w net.ipv4.ip_forward=1, and persist it in /etc/sysctl.d/)`,
        ),
  ];
  const present = new Set(observed.links.map((l) => l.name));
  const settings = interfaceSettings(site);
  for (const iface of new Set(settings.map((s) => s.iface))) {
    if (!present.has(iface)) continue; // gateway.interface or backend.uplink reports it
    const uplink = iface === site.backend.uplink;
    const keys = new Set(settings.filter((s) => s.iface === iface).map((s) => `sysctl ${interfaceKey(iface, s.key)}`));
    const mine = actions.filter((a) => keys.has(backendActionSubject(a)));
    const stop = mine.find((a) => a.kind === 'blocked');
    if (stop?.kind === 'blocked') results.push(blocked('sysctl.gateway', iface, stop));
    else if (mine.length === 0) {
      results.push(
        ok(
          'sysctl.gateway',
          iface,
          uplink
            ? 'reverse-path filtering sees the mark'
            : 'strict reverse-path filter that sees the mark; ARP only for its own address; no IPv6',
        ),
      );
    } else {
      results.push(
        fail(
          'sysctl.gateway',
          iface,
          `${would(mine)}: ${uplink ? 'without src_valid_mark, replies to VMs meet the fail-closed blackhole in reverse-path filtering and are dropped' : "without them a VM may send from addresses its network does not route or learn the backend's other addresses by ARP, and forwarded traffic meets the fail-closed blackhole in reverse-path filtering"}`,
          `${APPLY} (the backend service also sets the ARP ones at its start)`,
        ),
      );
    }
  }
  return results;
}

/** `sysctl.boot`: the boot-time settings file is the site's (a WARN: the running settings hold until reboot). */
export function sysctlFileCheck(site: Site, observed: ObservedBackend, options: BackendPlanOptions = {}): CheckResult {
  const [action] = planSysctlFile(site, observed, options);
  return action === undefined
    ? ok('sysctl.boot', SYSCTL_FILE, "the site's settings, applied at boot")
    : warn(
        'sysctl.boot',
        SYSCTL_FILE,
        `${action.kind === 'write-file' && action.reason === 'missing' ? 'missing' : 'differs from the site'}: the settings are lost at the next boot`,
        APPLY,
      );
}

/** `service.unit`: the backend's unit installed as the package ships it, and enabled (skipped in a namespace or with --no-service). */
export function unitChecks(observed: ObservedBackend, options: BackendPlanOptions = {}): CheckResult[] {
  if (options.netns !== undefined || options.noService === true) return [];
  const actions = planUnit(observed, options);
  const stop = actions.find((a) => a.kind === 'blocked');
  if (stop?.kind === 'blocked') return [blocked('service.unit', BACKEND_UNIT, stop)];
  return [
    actions.length === 0
      ? ok('service.unit', BACKEND_UNIT, 'installed and enabled')
      : fail('service.unit', BACKEND_UNIT, `${APPLY} would ${would(actions)}`, APPLY),
  ];
}

/** Every check of what `backend apply` manages. */
export function backendSetupChecks(
  site: Site,
  observed: ObservedBackend,
  options: BackendPlanOptions = {},
): CheckResult[] {
  return [
    ...gatewayChecks(site, observed),
    ...edgeChecks(site, observed),
    ...sysctlChecks(site, observed),
    sysctlFileCheck(site, observed, options),
    ...unitChecks(observed, options),
  ];
}
