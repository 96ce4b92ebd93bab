/**
 * Pinning and unpinning the ports of given NICs, as the hook does inside
 * libvirt's call and `host pin` does for hot-plugged NICs: one `ovs-vsctl`
 * call finds the ports (by `attached-mac` and `vm-id`) and their bridges'
 * policies, one `ovs-ofctl` dump per bridge reads the canary and stamps, one
 * bundle per bridge installs what is missing. It never replaces a program it
 * knows less about than whoever installed it (no address, no gateway MAC, a
 * group it cannot see): the host sync owns those. Runs through an injected
 * runner (the hook's is bounded by its deadline). May not: throw (every
 * failure is an outcome), log, or call the backend.
 */
import type { ProgramRunner } from '../exec/run.js';
import { programError } from '../exec/program-errors.js';
import { programKey, parseFlowDump, type FlowObservation } from './dump.js';
import { bridgeProgramOf, portLabel, portSpecOf, uplinkOf, vmPorts, type VmPort } from './intent.js';
import { bundleArgs, dumpStampsArgs, lookupArgs, parseLookup, type OvsSnapshot } from './ovs.js';
import { policyOf, type BridgePolicy } from './policy.js';
import { bundleText, renderPortProgram, type FlowProgram } from './render.js';

/** A NIC to pin or unpin, and what the backend said about it. */
export interface PinNic {
  readonly mac: string;
  /** The domain's UUID: with the MAC, it finds the port (`external_ids:vm-id`). */
  readonly vmUuid: string;
  /** The bridge it is on, when known (the live XML, hook.yaml): other bridges are not searched. */
  readonly bridge?: string;
  /** Its reserved address (the register answer); without it, a DHCP-only program. */
  readonly ip?: string;
  /** The gateway's MAC (the register answer). */
  readonly gatewayMac?: string;
}

/** What became of one NIC. */
export interface PinOutcome {
  readonly nic: PinNic;
  /**
   * `pinned` / `unpinned`: flows installed / removed; `current`: its program was already there;
   * `kept`: a different program is there and this run knows less than its author (the sync replaces it);
   * `unsecured`: its bridge has no port-security policy; `absent`: no port found; `failed`: see `detail`.
   */
  readonly result: 'pinned' | 'unpinned' | 'current' | 'kept' | 'unsecured' | 'absent' | 'failed';
  /** `br-secure port vnet0 (ofport 3, 52:54:00:..)` and what was done, or why it failed. */
  readonly detail: string;
}

/** How a pin run reaches OVS. */
export interface PinContext {
  /** Runs ovs-ofctl (and ovs-vsctl, without `lookup`). */
  readonly run: ProgramRunner;
  /** The time limit of the next OVS call in ms (the hook: what is left of its bound, at most 1000). */
  readonly timeoutMs: () => number;
  /** How bridges and ports are read (default: ovs-vsctl through `run`; the hook reads ovsdb-server's socket). */
  readonly lookup?: (timeoutMs: number) => Promise<OvsSnapshot>;
}

/** What one look at OVS found for a set of NICs: the ports, and each involved bridge's stamps. */
export interface PinState {
  readonly snapshot?: OvsSnapshot;
  /** Each involved bridge's stamps (or why they could not be read); none when not asked for. */
  readonly stamps?: ReadonlyMap<string, FlowObservation | string>;
  /** Why OVS could not be looked at (then every NIC fails with it, reported once). */
  readonly error?: string;
}

/** The result of a pin or unpin run. */
export interface PinResult {
  readonly outcomes: readonly PinOutcome[];
  /** Set when OVS could not be reached at all: one reason for every NIC. */
  readonly error?: string;
}

async function call(
  context: PinContext,
  program: string,
  doing: string,
  args: (ms: number) => string[],
  input?: string,
) {
  const ms = context.timeoutMs();
  if (ms <= 0) return { ok: false as const, message: `${program} not run ${doing}: no time left in this run` };
  const result = await context.run(program, args(ms), input === undefined ? {} : { input });
  if (result.exitCode === 0) return { ok: true as const, stdout: result.stdout };
  return { ok: false as const, message: programError(result, doing).message };
}

function findPorts(snapshot: OvsSnapshot, nic: PinNic): VmPort[] {
  const bridges = nic.bridge === undefined ? snapshot.bridges.map((b) => b.name) : [nic.bridge];
  return bridges.flatMap((bridge) =>
    vmPorts(bridge, snapshot.ports).filter((p) => p.mac === nic.mac && p.vmUuid === nic.vmUuid.toLowerCase()),
  );
}

function bridgeOfPort(snapshot: OvsSnapshot, port: VmPort): string {
  return snapshot.ports.find((p) => p.name === port.name)?.bridge ?? '';
}

async function lookup(context: PinContext): Promise<OvsSnapshot | { error: string }> {
  if (context.lookup !== undefined) {
    const ms = context.timeoutMs();
    if (ms <= 0) return { error: 'ovsdb-server not asked: no time left in this run' };
    return context.lookup(ms).catch((error: Error) => ({ error: error.message }));
  }
  const listed = await call(context, 'ovs-vsctl', 'listing ports', lookupArgs);
  if (!listed.ok) return { error: listed.message };
  try {
    return parseLookup(listed.stdout);
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/**
 * Look at OVS for these NICs: every bridge, port and interface in one call,
 * then (with `stamps`, the default) the stamps of each bridge that holds one
 * of their ports. Start it before the backend answers, and give it to
 * {@link pinNics} or {@link unpinNics} after. Without stamps, {@link pinNics}
 * installs what it renders (a VM's start: its port is new).
 */
export async function observeForPin(
  context: PinContext,
  nics: readonly PinNic[],
  options: { readonly stamps?: boolean } = {},
): Promise<PinState> {
  const found = await lookup(context);
  if ('error' in found) return { error: found.error };
  const snapshot = found;
  if (options.stamps === false) return { snapshot };
  const bridges = new Set<string>();
  for (const nic of nics) for (const port of findPorts(snapshot, nic)) bridges.add(bridgeOfPort(snapshot, port));
  const stamps = new Map<string, FlowObservation | string>();
  await Promise.all(
    [...bridges].map(async (bridge) => {
      const dump = await call(context, 'ovs-ofctl', `reading the stamps of ${bridge}`, (ms) =>
        dumpStampsArgs(bridge, ms),
      );
      try {
        stamps.set(bridge, dump.ok ? parseFlowDump(dump.stdout, false) : dump.message);
      } catch (error) {
        stamps.set(bridge, (error as Error).message);
      }
    }),
  );
  return { snapshot, stamps };
}

type Located = { nic: PinNic; port: VmPort; bridge: string; policy: BridgePolicy; stamps?: FlowObservation };

/** Each NIC's port, bridge and policy, or its outcome when it has none. */
function locate(state: PinState, nics: readonly PinNic[], outcomes: PinOutcome[]): Located[] {
  const located: Located[] = [];
  const snapshot = state.snapshot;
  if (snapshot === undefined) return located;
  for (const nic of nics) {
    const ports = findPorts(snapshot, nic);
    const port = ports[0];
    if (port === undefined) {
      const named = nic.bridge === undefined ? undefined : snapshot.bridges.find((b) => b.name === nic.bridge);
      outcomes.push(
        nic.bridge !== undefined && policyOf(named?.externalIds ?? {}) === undefined
          ? {
              nic,
              result: 'unsecured',
              detail: `bridge ${nic.bridge} ${named ? 'has no port-security policy' : 'does not exist'}`,
            }
          : { nic, result: 'absent', detail: `no OVS port with attached-mac ${nic.mac} and vm-id ${nic.vmUuid}` },
      );
      continue;
    }
    const bridge = bridgeOfPort(snapshot, port);
    const where = `${bridge} ${portLabel(port)}`;
    if (ports.length > 1) {
      outcomes.push({
        nic,
        result: 'failed',
        detail: `${ports.length} ports carry MAC ${nic.mac} of this VM (${ports.map((p) => p.name).join(', ')}: a migration on one host?); left to host reconcile`,
      });
      continue;
    }
    const policy = policyOf(snapshot.bridges.find((b) => b.name === bridge)?.externalIds ?? {});
    if (policy === undefined) {
      outcomes.push({ nic, result: 'unsecured', detail: `${where}: the bridge has no port-security policy` });
      continue;
    }
    if (typeof policy === 'string') {
      outcomes.push({
        nic,
        result: 'failed',
        detail: `${where}: ${policy} in the bridge's external_ids (run host apply)`,
      });
      continue;
    }
    const stamps = state.stamps?.get(bridge);
    if (state.stamps !== undefined && (stamps === undefined || typeof stamps === 'string')) {
      outcomes.push({ nic, result: 'failed', detail: `${where}: ${stamps ?? 'stamps not read'}` });
      continue;
    }
    located.push({ nic, port, bridge, policy, ...(typeof stamps === 'object' ? { stamps } : {}) });
  }
  return located;
}

/** One bridge's bundle and the outcomes it stands for (all failed when it fails). */
interface BridgeWork {
  readonly steps: Parameters<typeof bundleText>[0][number][];
  readonly done: PinOutcome[];
}

async function applyBundles(context: PinContext, byBridge: Map<string, BridgeWork>, outcomes: PinOutcome[]) {
  await Promise.all(
    [...byBridge].map(async ([bridge, work]) => {
      if (work.steps.length === 0) return outcomes.push(...work.done);
      const doing = `applying a flow bundle to ${bridge}`;
      const result = await call(context, 'ovs-ofctl', doing, (ms) => bundleArgs(bridge, ms), bundleText(work.steps));
      if (result.ok) outcomes.push(...work.done);
      else
        outcomes.push(...work.done.map((o): PinOutcome => ({ nic: o.nic, result: 'failed', detail: result.message })));
    }),
  );
}

/**
 * Install each NIC's port program, and its bridge's. Without stamps (a VM's
 * start: its port is new) both are installed, the bridge's when this run
 * knows the gateway's MAC (`all` needs none). With stamps (`started`,
 * `reconnect`, `host pin`): what is missing always; what differs only when
 * this run knows the NIC's address and the gateway's MAC, and never a port's
 * on a `groups` network (the sync renders the group).
 */
export async function pinNics(context: PinContext, state: PinState, nics: readonly PinNic[]): Promise<PinResult> {
  if (state.error !== undefined) return { outcomes: [], error: state.error };
  const outcomes: PinOutcome[] = [];
  const byBridge = new Map<string, { steps: { install: FlowProgram }[]; done: PinOutcome[] }>();
  for (const { nic, port, bridge, policy, stamps } of locate(state, nics, outcomes)) {
    const snapshot = state.snapshot!;
    const work = byBridge.get(bridge) ?? { steps: [], done: [] };
    byBridge.set(bridge, work);
    const where = `${bridge} ${portLabel(port)}`;
    const needsGateway = policy.peers !== 'all';
    const complete = nic.ip !== undefined && (!needsGateway || nic.gatewayMac !== undefined);
    try {
      const mine = snapshot.ports.filter((p) => p.bridge === bridge);
      const bridgeInfo = snapshot.bridges.find((b) => b.name === bridge)!;
      const bridgeProgram = bridgeProgramOf(bridgeInfo, policy, mine, nic.gatewayMac);
      const planned = work.steps.some((s) => s.install.kind === 'bridge');
      const bridgeStamp = stamps?.stamps.get(programKey('bridge', 0));
      // Without stamps (a start), the bridge's program is installed whenever this run knows all it needs: the
      // same inputs give the same program, replaced atomically. With stamps, when it is missing or differs.
      const knows = !needsGateway || nic.gatewayMac !== undefined;
      const install =
        stamps === undefined
          ? knows
          : !stamps.canary || bridgeStamp === undefined || (bridgeStamp !== bridgeProgram.digest && knows);
      if (!planned && install) work.steps.unshift({ install: bridgeProgram });
      const program = renderPortProgram(
        portSpecOf(policy, port, { uplink: uplinkOf(policy, mine), ip: nic.ip, gatewayMac: nic.gatewayMac }),
      );
      const stamp = stamps?.canary === true ? stamps.stamps.get(programKey('port', port.ofport)) : undefined;
      const bridgeToo = work.steps.some((s) => s.install.kind === 'bridge') ? ' (and the bridge program)' : '';
      if (stamp === program.digest) {
        work.done.push({ nic, result: 'current', detail: `${where}: its program is in place${bridgeToo}` });
      } else if (stamp !== undefined && (!complete || policy.peers === 'groups')) {
        work.done.push({
          nic,
          result: 'kept',
          detail: `${where}: a different program is in place; kept (${policy.peers === 'groups' ? 'a groups network: the sync renders the group' : 'this run lacks the address or the gateway MAC'})${bridgeToo}`,
        });
      } else {
        work.steps.push({ install: program });
        const what = `${stamp === undefined ? 'pinned' : 'pinned anew'}${nic.ip === undefined ? ' without an address (DHCP only)' : ` to ${nic.ip}`}${bridgeToo}`;
        work.done.push({ nic, result: 'pinned', detail: `${where}: ${what}` });
      }
    } catch (error) {
      outcomes.push({ nic, result: 'failed', detail: `${where}: ${(error as Error).message}` });
    }
  }
  await applyBundles(context, byBridge, outcomes);
  return { outcomes };
}

/** Remove each NIC's port program (exact cookie); a port found twice (a migration on one host) is left to the sync. */
export async function unpinNics(context: PinContext, state: PinState, nics: readonly PinNic[]): Promise<PinResult> {
  if (state.error !== undefined) return { outcomes: [], error: state.error };
  const outcomes: PinOutcome[] = [];
  const byBridge = new Map<string, BridgeWork>();
  for (const { nic, port, bridge } of locate(state, nics, outcomes)) {
    const work = byBridge.get(bridge) ?? { steps: [], done: [] };
    byBridge.set(bridge, work);
    work.steps.push({ remove: { kind: 'port', ident: port.ofport } });
    work.done.push({ nic, result: 'unpinned', detail: `${bridge} ${portLabel(port)}: its flows removed` });
  }
  await applyBundles(context, byBridge, outcomes);
  return { outcomes };
}
