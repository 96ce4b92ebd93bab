/**
 * `ticrypt-net host ...`: every command run on a KVM host. `plan|apply` bring
 * OVS and libvirt to the site (`src/host/apply.ts`), `flush|reconcile|spool`
 * drive the host agent (`src/hook/agent/`). May not: decide anything: it parses
 * options, calls, and prints.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { HookSpoolError } from '../errors/hook-spool-error.js';
import { UsageError } from '../errors/usage-error.js';
import { agentContext } from '../hook/agent/context.js';
import { flushSpool } from '../hook/agent/deliver.js';
import { listRunningDomainXml, reconcileHost } from '../hook/agent/reconcile.js';
import { Spool } from '../hook/agent/spool.js';
import { loadHookConfig } from '../hook/setup/config.js';
import { applyHost, planHostNow, unconvergedError, type HostRunOptions } from '../host/apply.js';
import { describeAction } from '../host/describe.js';
import { DEFAULT_UPLINK_BRIDGE, type Action } from '../host/model.js';
import { renderNmKeyfiles } from '../host/nmconnection.js';
import { resolveHost } from '../host/this-host.js';
import { flowSyncError, syncFlows, type FlowSyncResult } from '../host/flows/sync.js';
import { pinPending } from '../hook/agent/pin-pending.js';
import { hookLog } from '../hook/agent/log.js';
import { programRunner } from '../exec/run.js';
import { flowSourceOf, optionalFlowSource } from './flow-source.js';
import { loadSite } from '../site/load.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { parseInteger, withConnect, withHookConfig } from './options.js';
import { DEFAULT_HOOK_CONFIG } from '../names.js';

interface SetupOptions {
  site?: string;
  host?: string;
  datapath: string;
  uplinkBridge: string;
  connect: string;
  config: string;
}

function withSetupOptions(command: Command): Command {
  return withConnect(
    command
      .option(
        '--config <file>',
        "the hook configuration; when it exists, port security's flows are planned too (its backend is asked)",
        DEFAULT_HOOK_CONFIG,
      )
      .option('--site <file>', 'site file (YAML); default: the three preset networks')
      .option(
        '--host <name>',
        "this host's name in the site (for its uplink override); default: the machine's hostname",
      )
      .option(
        '--datapath <type>',
        "datapath_type of bridges created: 'system' (kernel) or 'netdev' (userspace)",
        'system',
      )
      .option(
        '--uplink-bridge <name>',
        'the shared bridge holding the parent of trunk-mode networks',
        DEFAULT_UPLINK_BRIDGE,
      ),
  );
}

/** The plan options of `--datapath`, `--uplink-bridge` and `--connect`. */
export function runOptions(options: Omit<SetupOptions, 'site' | 'host' | 'config'>): HostRunOptions {
  if (options.datapath !== 'system' && options.datapath !== 'netdev') {
    throw new UsageError(`--datapath: expected 'system' or 'netdev', found ${JSON.stringify(options.datapath)}`);
  }
  return { datapathType: options.datapath, uplinkBridge: options.uplinkBridge, uri: options.connect };
}

function actionJson(action: Action) {
  // The rendered XML and flow programs are long and derivable: JSON carries the description instead.
  const { ...rest } = action as Action & { xml?: string; program?: unknown };
  delete rest.xml;
  delete rest.program;
  return { ...rest, description: describeAction(action) };
}

/**
 * `ticrypt-net host plan|apply|flush|reconcile|spool`: bring OVS bridges,
 * uplinks and libvirt networks to the site's state; deliver what the hooks
 * spooled, and converge the backend to this host.
 */
export function addHostCommands(program: Command, io: CliIo): void {
  const host = program
    .command('host')
    .description('Set up and check this KVM host: OVS bridges, uplinks, libvirt networks');
  const globals = () => program.opts<GlobalOptions>();

  withSetupOptions(
    host
      .command('plan')
      .description('Show what host apply would change (or write NetworkManager keyfiles with --format nmconnection)')
      .option(
        '--format <format>',
        "'text' (the actions) or 'nmconnection' (keyfiles of the VLAN interfaces, to --out)",
        'text',
      )
      .option('--out <dir>', 'where --format nmconnection writes its keyfiles'),
  ).action(async (options: SetupOptions & { format: string; out?: string }) => {
    const site = await loadSite(options.site);
    const name = resolveHost(site, options.host);
    if (options.format === 'nmconnection') {
      if (options.out === undefined) throw new UsageError('--format nmconnection: expected --out <dir>, found none');
      await mkdir(options.out, { recursive: true });
      const written: string[] = [];
      for (const file of renderNmKeyfiles(site, name)) {
        const path = join(options.out, file.fileName);
        await writeFile(path, file.text, { mode: 0o600 });
        written.push(path);
      }
      io.out(
        globals().json
          ? toJson({ written })
          : written.map((p) => `wrote ${p}\n`).join('') || 'no VLAN interfaces (no vlan-mode network)\n',
      );
      return;
    }
    if (options.format !== 'text') {
      throw new UsageError(`--format: expected 'text' or 'nmconnection', found ${JSON.stringify(options.format)}`);
    }
    const flows = await optionalFlowSource(options.config);
    const actions = await planHostNow(site, name, { ...runOptions(options), ...(flows ? { flows } : {}) });
    if (globals().json) io.out(toJson({ host: name ?? null, actions: actions.map(actionJson) }));
    else io.out(actions.length === 0 ? 'nothing to change\n' : actions.map((a) => `${describeAction(a)}\n`).join(''));
  });

  withSetupOptions(
    host
      .command('apply')
      .description('Create or repair bridges, uplink ports, VLAN tags and libvirt networks, then confirm'),
  ).action(async (options: SetupOptions) => {
    const site = await loadSite(options.site);
    const name = resolveHost(site, options.host);
    const flows = await optionalFlowSource(options.config);
    const result = await applyHost(site, name, {
      ...runOptions(options),
      ...(flows ? { flows } : {}),
      onAction: (action) => {
        if (!globals().json) io.out(`${describeAction(action)}\n`);
      },
    });
    const { applied, remaining } = result;
    if (globals().json) {
      io.out(toJson({ host: name ?? null, applied: applied.map(actionJson), remaining: remaining.map(actionJson) }));
    } else if (applied.length === 0 && remaining.length === 0) io.out('nothing to change\n');
    else if (remaining.length === 0) io.out(`applied ${applied.length} change(s); confirmed: nothing left to change\n`);
    const error = unconvergedError(result);
    if (error) throw error;
  });

  withHookConfig(
    host
      .command('flush')
      .description('Deliver the events the hooks spooled (in order per NIC); fails while any remain'),
  )
    .option('--timeout <ms>', 'give up after this long', '30000')
    .action(async (options: { config: string; timeout: string }) => {
      const config = await loadHookConfig(options.config);
      const timeoutMs = parseInteger('--timeout', options.timeout, 100, 3_600_000);
      const ctx = await agentContext(config, { timeoutMs, stderr: (line) => io.err(line) });
      const result = await flushSpool(ctx);
      await ctx.log.close();
      io.out(
        globals().json
          ? toJson(result)
          : `delivered ${result.delivered}, set aside ${result.deadLettered} (in ${ctx.spool.failed}), remaining ${result.remaining}\n`,
      );
      if (result.remaining > 0) {
        throw new HookSpoolError(
          ctx.spool.events,
          `${result.remaining} event(s) still spooled in ${ctx.spool.events}: ${result.busy ? 'another flush holds the lock' : 'the backend did not take them'}`,
        );
      }
    });

  withConnect(
    withHookConfig(
      host
        .command('reconcile')
        .description("Send the backend this host's running managed NICs (from libvirt); it converges to them"),
    ),
  )
    .option('--timeout <ms>', 'give up after this long', '60000')
    .action(async (options: { config: string; connect: string; timeout: string }) => {
      const config = await loadHookConfig(options.config);
      const timeoutMs = parseInteger('--timeout', options.timeout, 100, 3_600_000);
      const ctx = await agentContext(config, { timeoutMs, stderr: (line) => io.err(line) });
      const report = await reconcileHost(config, ctx, () => listRunningDomainXml(options.connect));
      for (const problem of report.problems) ctx.log.warn(`reconcile: ${problem}`);
      // Then port security: the ports the network hook asked for, and every bridge's flows.
      const run = programRunner();
      const pins = await pinPending(config.spoolDir, run, { waitMs: 0, log: ctx.log });
      const flows = await syncFlows(run, flowSourceOf(config, options.config));
      for (const action of flows.applied) ctx.log.info(`flows: ${describeAction(action)}`);
      await ctx.log.close();
      io.out(
        globals().json
          ? toJson({ ...report, pins, flows: flowsJson(flows) })
          : `reconciled ${report.nics.length} NIC(s) at generation ${report.generation}: added ${report.added}, removed ${report.removed}, conflicts ${report.conflicts.length}; spool: delivered ${report.flush.delivered}, superseded ${report.superseded}\n${flowsText(flows)}`,
      );
      const error = flowSyncError(flows);
      if (error) throw error;
    });

  withHookConfig(
    host
      .command('flows')
      .description(
        "Sync port security's flows on every port-secured bridge: install what is missing or stale, remove what is left over",
      ),
  )
    .option('--dry-run', 'only show what would change')
    .action(async (options: { config: string; dryRun?: boolean }) => {
      const config = await loadHookConfig(options.config);
      const result = await syncFlows(programRunner(), flowSourceOf(config, options.config), {
        dryRun: options.dryRun === true,
        onAction: (action) => {
          if (!globals().json) io.out(`${describeAction(action)}\n`);
        },
      });
      if (globals().json) io.out(toJson(flowsJson(result)));
      else if (options.dryRun === true) {
        io.out(result.remaining.map((a) => `${describeAction(a)}\n`).join('') || 'nothing to change\n');
      } else io.out(flowsText(result));
      const error = options.dryRun === true ? undefined : flowSyncError(result);
      if (error) throw error;
    });

  withHookConfig(
    host
      .command('pin')
      .description('Pin the ports the network hook asked for (hot-plugged NICs), waiting for each to exist'),
  )
    .option('--wait <ms>', 'how long to wait for ports that do not exist yet', '10000')
    .action(async (options: { config: string; wait: string }) => {
      const config = await loadHookConfig(options.config);
      const waitMs = parseInteger('--wait', options.wait, 0, 3_600_000);
      const log = hookLog({ syslog: config.syslog, tag: 'ticrypt-net-host', stderr: (line) => io.err(line) });
      const result = await pinPending(config.spoolDir, programRunner(), { waitMs, log });
      await log.close();
      io.out(
        globals().json
          ? toJson(result)
          : `pinned ${result.pinned}, waiting ${result.waiting}, dropped ${result.dropped}\n`,
      );
    });

  withHookConfig(host.command('spool').description('List the events the hooks spooled and have not delivered')).action(
    async (options: { config: string }) => {
      const config = await loadHookConfig(options.config);
      const entries = new Spool(config.spoolDir).list().map((e) => ({ file: e.file, ...e.event }));
      io.out(
        globals().json
          ? toJson({ events: entries })
          : entries
              .map(
                (e) =>
                  `${e.generation} ${e.op} vm=${e.nic.vmName} mac=${e.nic.mac} network=${e.nic.network} (${e.cause})\n`,
              )
              .join('') || 'spool empty\n',
      );
    },
  );
}

function flowsJson(result: FlowSyncResult) {
  return {
    bridges: result.bridges,
    applied: result.applied.map(actionJson),
    remaining: result.remaining.map(actionJson),
  };
}

function flowsText(result: FlowSyncResult): string {
  if (result.bridges.length === 0) return 'flows: no port-secured bridge\n';
  const left = result.remaining.length === 0 ? 'in place' : `${result.remaining.length} left`;
  return `flows: ${result.bridges.join(', ')}: ${result.applied.length} change(s), ${left}\n`;
}
