/**
 * Doctor's checks of what `host apply` manages (Open vSwitch, bridges, uplink
 * and patch ports, VLAN interfaces, libvirt networks), built from the
 * planner's own pieces: a subject is OK exactly when the plan has nothing to
 * do for it; a blocked action is a FAIL with the planner's reason and fix;
 * any other action is a FAIL whose fix is `host apply`, except a network not
 * autostarted (a WARN: it works until the next restart). So doctor and
 * `host plan` can never disagree.
 *
 * For: `./host-checks.ts`. May not: look at the host's state other than
 * through the planner (that would be a second opinion).
 */
import { DEFAULT_LIBVIRT_URI } from '../../names.js';
import type { Site } from '../../site/model.js';
import { actionSubject } from '../describe.js';
import type { HostLayout } from '../layout.js';
import type { Action, ObservedHost, PlanOptions } from '../model.js';
import { planBridgePolicies, planBridges, planLinks, planNetworks, planOvs, planPorts } from '../plan.js';
import { planFlowsOfHost } from '../flows/plan.js';
import { describeAction } from '../describe.js';
import { fail, ok, warn, type CheckResult } from './result.js';

const APPLY = 'ticrypt-net host apply';

/** What the plan-built checks need besides the plan's own options. */
export interface PlanCheckOptions extends PlanOptions {
  /** The libvirt connection named in fixes (default `qemu:///system`). */
  readonly uri?: string;
}

/** Actions by the subject they act on (`bridge br-secure`, ...), each subject's in plan order. */
function bySubject(actions: readonly Action[]): (subject: string) => Action[] {
  return (subject) => actions.filter((a) => actionSubject(a) === subject);
}

function blockedResult(id: string, subject: string, action: Extract<Action, { kind: 'blocked' }>): CheckResult {
  return fail(id, subject, action.reason, action.fix);
}

/** `ovs.running`: whether ovsdb-server answers. */
export function ovsCheck(observed: ObservedHost): CheckResult {
  const [down] = planOvs(observed);
  return down?.kind === 'blocked'
    ? blockedResult('ovs.running', 'Open vSwitch', down)
    : ok('ovs.running', 'Open vSwitch', 'ovsdb-server answers');
}

/** `bridge.present`: each bridge the site manages, on the expected datapath. */
export function bridgeChecks(layout: HostLayout, observed: ObservedHost, options: PlanOptions = {}): CheckResult[] {
  const of = bySubject(planBridges(layout, observed, options));
  return layout.bridges.map((bridge) => {
    const [action] = of(`bridge ${bridge}`);
    if (action === undefined) return ok('bridge.present', bridge, 'present');
    if (action.kind === 'blocked') return blockedResult('bridge.present', bridge, action);
    return fail('bridge.present', bridge, 'the bridge does not exist', `${APPLY} (creates it with its uplink)`);
  });
}

/** `bridge.port-security`: each network bridge with fail_mode=secure and the site's port-security policy. */
export function bridgePolicyChecks(layout: HostLayout, observed: ObservedHost): CheckResult[] {
  const actions = planBridgePolicies(layout, observed);
  const results: CheckResult[] = [];
  for (const { bridge, policy } of layout.policies) {
    if (!observed.bridges.some((b) => b.name === bridge)) continue;
    const action = actions.find((a) => a.kind === 'set-bridge-policy' && a.bridge === bridge);
    results.push(
      action?.kind === 'set-bridge-policy'
        ? fail(
            'bridge.port-security',
            bridge,
            action.differences.join('; '),
            `${APPLY} (sets fail_mode=secure and the policy; without it, after an ovs-vswitchd restart OVS forwards everything until the flows are back)`,
          )
        : ok('bridge.port-security', bridge, `fail_mode=secure, peers ${policy.peers}, ipv6 ${policy.ipv6}`),
    );
  }
  return results;
}

/**
 * `flows.programs`: on each port-secured bridge, the canary and every
 * program (bridge, groups, VM ports) as the flow planner wants them; a WARN
 * when they could not be checked (no hook configuration, no backend answer).
 */
export function flowChecks(observed: ObservedHost, reshaping: boolean): CheckResult[] {
  const flows = observed.flows;
  if (flows === undefined) {
    return [
      warn(
        'flows.programs',
        'port security',
        'not checked: no hook configuration to ask the backend with',
        'ticrypt-net hook install, then fill in /etc/ticrypt-net/hook.yaml',
      ),
    ];
  }
  if (reshaping) {
    return [
      warn(
        'flows.programs',
        'port security',
        'not checked: bridges or ports differ from the site first (see above)',
        `${APPLY} (then the flows are planned from the bridges as they are)`,
      ),
    ];
  }
  const actions = planFlowsOfHost(observed);
  const blocked = actions.find((a) => a.kind === 'blocked' && a.subject === 'flows');
  if (blocked?.kind === 'blocked')
    return [warn('flows.programs', 'port security', `not checked: ${blocked.reason}`, blocked.fix)];
  return flows.targets.map(({ bridge }) => {
    const mine = actions.filter((a) => actionSubject(a) === `flows ${bridge}`);
    const observation = flows.bridges.get(bridge);
    if (mine.length === 0) {
      return ok('flows.programs', bridge, `${observation?.stamps.size ?? 0} program(s) in place, canary present`);
    }
    return fail(
      'flows.programs',
      bridge,
      `${observation?.canary === false ? 'the canary is gone (ovs-vswitchd lost its flows?); ' : ''}${mine.map(describeAction).join('; ')}`,
      'ticrypt-net host flows (or wait for the sync timer: host reconcile)',
    );
  });
}

/** `bridge.uplink` and `vlan.uplink`: each uplink and patch port, on its bridge with its VLANs; no leftover of ours. */
export function portChecks(layout: HostLayout, observed: ObservedHost): CheckResult[] {
  const actions = planPorts(layout, observed);
  const of = bySubject(actions);
  const results = layout.ports.map((desired): CheckResult => {
    const [action] = of(`port ${desired.port}`);
    const want = vlanText(desired.tag, desired.trunks);
    if (action === undefined) return ok('bridge.uplink', desired.port, `on ${desired.bridge} with ${want}`);
    if (action.kind === 'blocked') return blockedResult('bridge.uplink', desired.port, action);
    if (action.kind === 'set-port-vlan') {
      return fail(
        'vlan.uplink',
        desired.port,
        `${vlanText(action.was.tag, action.was.trunks)}, expected ${want}`,
        `${APPLY} (or ovs-vsctl set port ${desired.port} ${setText(desired.tag, desired.trunks)})`,
      );
    }
    return fail(
      'bridge.uplink',
      desired.port,
      `not a port of ${desired.bridge}`,
      `${APPLY} (adds it to ${desired.bridge} with ${want})`,
    );
  });
  for (const action of actions) {
    if (action.kind !== 'remove-port') continue;
    results.push(
      fail('bridge.uplink', action.port, `a port of ${action.bridge} ${action.reason}`, `${APPLY} (removes it)`),
    );
  }
  return results;
}

/**
 * `uplink.interface`: each VLAN interface and trunk parent exists, is up, has
 * no address, and (with a parent) an MTU no smaller than its networks'.
 */
export function linkChecks(layout: HostLayout, observed: ObservedHost): CheckResult[] {
  const actions = planLinks(layout, observed);
  const of = bySubject(actions);
  const names = [
    ...new Set([
      ...layout.vlanInterfaces.map((v) => v.interface),
      ...layout.trunkParents,
      ...actions.map((a) => actionSubject(a).replace(/^interface /, '')),
    ]),
  ];
  return names.flatMap((name): CheckResult[] => {
    const found = of(`interface ${name}`);
    if (found.length === 0) return [ok('uplink.interface', name, 'up')];
    const create = found.find((a) => a.kind === 'create-vlan-interface');
    if (create?.kind === 'create-vlan-interface') {
      return [
        fail(
          'uplink.interface',
          name,
          'the interface does not exist',
          `${APPLY} (creates VLAN ${create.vlan} on ${create.parent}), or host plan --format nmconnection for NetworkManager`,
        ),
      ];
    }
    return found.map((action) => {
      if (action.kind === 'blocked') return blockedResult('uplink.interface', name, action);
      if (action.kind === 'set-link-mtu') {
        return fail(
          'uplink.interface',
          name,
          `its MTU is ${action.was}, below the site's ${action.mtu}`,
          `${APPLY} (or ip link set dev ${name} mtu ${action.mtu})`,
        );
      }
      return fail('uplink.interface', name, 'the interface is down', `ip link set dev ${name} up`);
    });
  });
}

/** `network.defined|definition|active|autostart`: each libvirt network as rendered, running, autostarted. */
export function networkChecks(
  site: Site,
  layout: HostLayout,
  observed: ObservedHost,
  options: PlanCheckOptions = {},
): CheckResult[] {
  const uri = options.uri ?? DEFAULT_LIBVIRT_URI;
  const of = bySubject(planNetworks(site, layout, observed));
  const results: CheckResult[] = [];
  for (const { name } of layout.networks) {
    const actions = of(`network ${name}`);
    const define = actions.find((a) => a.kind === 'define-network' || a.kind === 'blocked');
    if (define?.kind === 'define-network' && define.reason === 'missing') {
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
    if (define?.kind === 'define-network') {
      // Redefined, then started and autostarted again: the definition is what is wrong.
      results.push(
        fail(
          'network.definition',
          name,
          `differs from the rendered definition: ${define.differences.join('; ')}`,
          APPLY,
        ),
      );
      continue;
    }
    results.push(
      define?.kind === 'blocked'
        ? blockedResult('network.definition', name, define)
        : ok('network.definition', name, 'equal to the rendered definition (UUID included)'),
    );
    results.push(
      actions.some((a) => a.kind === 'start-network')
        ? fail('network.active', name, 'defined but not active', `virsh -c ${uri} net-start ${name}`)
        : ok('network.active', name, 'active'),
    );
    results.push(
      actions.some((a) => a.kind === 'autostart-network')
        ? warn(
            'network.autostart',
            name,
            'not autostarted: it stays down after a libvirtd restart or reboot',
            `virsh -c ${uri} net-autostart ${name}`,
          )
        : ok('network.autostart', name, 'autostarts'),
    );
  }
  return results;
}

/** A port's VLANs in words: `tag 1081`, `trunks 1081,1090`, or untagged. */
export function vlanText(tag: number | undefined, trunks: readonly number[]): string {
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
