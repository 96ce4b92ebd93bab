import type { Command } from 'commander';
import { HookSpoolError } from '../errors/hook-spool-error.js';
import { loadHookConfig } from '../hook/setup/config.js';
import { DEFAULT_CONFIG_PATH, type HookConfig } from '../hook/setup/config-types.js';
import type { DeliveryContext } from '../hook/agent/deliver.js';
import { flushSpool } from '../hook/agent/deliver.js';
import { transportOf } from '../hook/agent/environment.js';
import { hookLog } from '../hook/agent/log.js';
import { listRunningDomainXml, reconcileHost } from '../hook/agent/reconcile.js';
import { Spool } from '../hook/agent/spool.js';
import { hostGroup } from './host-setup.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { parseInteger } from './options.js';

async function context(config: HookConfig, io: CliIo, timeoutMs: number): Promise<DeliveryContext> {
  return {
    transport: await transportOf(config),
    spool: new Spool(config.spoolDir),
    log: hookLog({ syslog: config.syslog, tag: 'ticrypt-net-host', stderr: (line) => io.err(line) }),
    requestMs: Math.max(config.timeouts.requestMs, 5000),
    deadline: Date.now() + timeoutMs,
  };
}

/** `ticrypt-net host flush|reconcile|spool`: deliver what the hooks spooled, and converge the backend to this host. */
export function addHostCommands(program: Command, io: CliIo): void {
  const host = hostGroup(program);
  const globals = () => program.opts<GlobalOptions>();

  host
    .command('flush')
    .description('Deliver the events the hooks spooled (in order per NIC); fails while any remain')
    .option('--config <file>', 'hook configuration', DEFAULT_CONFIG_PATH)
    .option('--timeout <ms>', 'give up after this long', '30000')
    .action(async (options: { config: string; timeout: string }) => {
      const config = await loadHookConfig(options.config);
      const ctx = await context(config, io, parseInteger('--timeout', options.timeout, 100, 3_600_000));
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

  host
    .command('reconcile')
    .description("Send the backend this host's running managed NICs (from libvirt); it converges to them")
    .option('--config <file>', 'hook configuration', DEFAULT_CONFIG_PATH)
    .option('--connect <uri>', 'libvirt URI', 'qemu:///system')
    .option('--timeout <ms>', 'give up after this long', '60000')
    .action(async (options: { config: string; connect: string; timeout: string }) => {
      const config = await loadHookConfig(options.config);
      const ctx = await context(config, io, parseInteger('--timeout', options.timeout, 100, 3_600_000));
      const report = await reconcileHost(config, ctx, () => listRunningDomainXml(options.connect));
      for (const problem of report.problems) ctx.log.warn(`reconcile: ${problem}`);
      await ctx.log.close();
      io.out(
        globals().json
          ? toJson(report)
          : `reconciled ${report.nics.length} NIC(s) at generation ${report.generation}: added ${report.added}, removed ${report.removed}, conflicts ${report.conflicts.length}; spool: delivered ${report.flush.delivered}, superseded ${report.superseded}\n`,
      );
    });

  host
    .command('spool')
    .description('List the events the hooks spooled and have not delivered')
    .option('--config <file>', 'hook configuration', DEFAULT_CONFIG_PATH)
    .action(async (options: { config: string }) => {
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
    });
}
