import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { HostApplyError } from '../errors/host-apply-error.js';
import { UsageError } from '../errors/usage-error.js';
import { describeAction } from '../host/describe.js';
import { executeActions } from '../host/execute.js';
import { DEFAULT_UPLINK_BRIDGE, type Action, type PlanOptions } from '../host/model.js';
import { renderNmKeyfiles } from '../host/nmconnection.js';
import { DEFAULT_VIRSH_URI, observeHost } from '../host/observe.js';
import { planHost } from '../host/plan.js';
import { loadSite } from '../site/load.js';
import type { Site } from '../site/model.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

interface HostSetupOptions {
  site?: string;
  host?: string;
  datapath: string;
  uplinkBridge: string;
  virshUri: string;
}

/** The `host` command group, shared with the hook's host commands: found if already added, else created. */
export function hostGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'host') ??
    program.command('host').description('Set up and check this KVM host: OVS bridges, uplinks, libvirt networks')
  );
}

/** Which host of the site this is: `--host`, else this machine's name when the site lists it. */
export function resolveHost(site: Site, host: string | undefined): string | undefined {
  if (host !== undefined) return host;
  const own = hostname();
  return site.hosts.some((h) => h.name === own) ? own : undefined;
}

function withCommonOptions(command: Command): Command {
  return command
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .option('--host <name>', "this host's name in the site (for its uplink override); default: the machine's hostname")
    .option(
      '--datapath <type>',
      "datapath_type of bridges created: 'system' (kernel) or 'netdev' (userspace)",
      'system',
    )
    .option(
      '--uplink-bridge <name>',
      'the shared bridge holding the parent of trunk-mode networks',
      DEFAULT_UPLINK_BRIDGE,
    )
    .option('--virsh-uri <uri>', 'libvirt connection', DEFAULT_VIRSH_URI);
}

function planOptions(options: HostSetupOptions): PlanOptions {
  if (options.datapath !== 'system' && options.datapath !== 'netdev') {
    throw new UsageError(`--datapath: expected 'system' or 'netdev', found ${JSON.stringify(options.datapath)}`);
  }
  return { datapathType: options.datapath, uplinkBridge: options.uplinkBridge };
}

function actionJson(action: Action) {
  // The rendered XML is long and derivable: JSON carries the description instead.
  const { ...rest } = action as Action & { xml?: string };
  delete rest.xml;
  return { ...rest, description: describeAction(action) };
}

/** `ticrypt-net host plan|apply`: bring OVS bridges, uplinks and libvirt networks to the site's state. */
export function addHostSetupCommands(program: Command, io: CliIo): void {
  const host = hostGroup(program);
  const globals = () => program.opts<GlobalOptions>();

  withCommonOptions(
    host
      .command('plan')
      .description('Show what host apply would change (or write NetworkManager keyfiles with --format nmconnection)')
      .option(
        '--format <format>',
        "'text' (the actions) or 'nmconnection' (keyfiles of the VLAN interfaces, to --out)",
        'text',
      )
      .option('--out <dir>', 'where --format nmconnection writes its keyfiles'),
  ).action(async (options: HostSetupOptions & { format: string; out?: string }) => {
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
    const plan = planOptions(options);
    const actions = planHost(site, name, await observeHost(site, { virshUri: options.virshUri }), plan);
    if (globals().json) io.out(toJson({ host: name ?? null, actions: actions.map(actionJson) }));
    else io.out(actions.length === 0 ? 'nothing to change\n' : actions.map((a) => `${describeAction(a)}\n`).join(''));
  });

  withCommonOptions(
    host
      .command('apply')
      .description('Create or repair bridges, uplink ports, VLAN tags and libvirt networks, then confirm'),
  ).action(async (options: HostSetupOptions) => {
    const site = await loadSite(options.site);
    const name = resolveHost(site, options.host);
    const plan = planOptions(options);
    const observe = () => observeHost(site, { virshUri: options.virshUri });
    const actions = planHost(site, name, await observe(), plan);
    const applied: Action[] = [];
    await executeActions(actions, {
      virshUri: options.virshUri,
      onAction: (action) => {
        applied.push(action);
        if (!globals().json) io.out(`${describeAction(action)}\n`);
      },
    });
    const remaining = planHost(site, name, await observe(), plan);
    if (globals().json) {
      io.out(toJson({ host: name ?? null, applied: applied.map(actionJson), remaining: remaining.map(actionJson) }));
    } else if (applied.length === 0 && remaining.length === 0) io.out('nothing to change\n');
    else if (remaining.length === 0) io.out(`applied ${applied.length} change(s); confirmed: nothing left to change\n`);
    if (remaining.length > 0) {
      const blocked = remaining.every((a) => a.kind === 'blocked');
      throw new HostApplyError(
        blocked
          ? "Some changes are blocked; they are the operator's to make"
          : 'The host still differs from the site after applying',
        remaining.map(describeAction),
      );
    }
  });
}
