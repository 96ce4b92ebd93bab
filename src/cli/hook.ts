import type { Command } from 'commander';
import { loadHookConfig } from '../hook/setup/config.js';
import { readToken } from '../hook/agent/environment.js';
import { installHooks } from '../hook/setup/install.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { withHookConfig } from './options.js';

/** `ticrypt-net hook install|check`: put the libvirt hooks in place and check their configuration. */
export function addHookCommands(program: Command, io: CliIo): void {
  const hook = program.command('hook').description('The libvirt qemu and network hooks that register VM NICs');
  const globals = () => program.opts<GlobalOptions>();

  hook
    .command('install')
    .description(
      'Install /etc/libvirt/hooks/qemu and network (or qemu.d/ and network.d/ticrypt-net) and a config template',
    )
    .option('--qemu-d', 'install as qemu.d/ticrypt-net and network.d/ticrypt-net, beside other hooks (libvirt >= 6.5)')
    .option('--root <dir>', 'install under this root instead of / (images, tests)')
    .option('--node <path>', 'the node binary the hooks run (default /usr/bin/node, else /usr/local/bin/node)')
    .action((options: { qemuD?: boolean; root?: string; node?: string }) => {
      const report = installHooks({
        qemuD: options.qemuD === true,
        ...(options.root === undefined ? {} : { root: options.root }),
        ...(options.node === undefined ? {} : { node: options.node }),
      });
      if (globals().json) {
        io.out(toJson(report));
        return;
      }
      io.out(
        [
          ...report.written.map((path) => `wrote ${path}`),
          ...report.kept.map((path) => `kept ${path} (exists)`),
          ...report.unchanged.map((path) => `unchanged ${path}`),
          `hooks run ${report.node}`,
          ...report.notes.map((note) => `next: ${note}`),
        ].join('\n') + '\n',
      );
    });

  withHookConfig(
    hook.command('check').description('Validate the hook configuration and its token file; print a summary'),
  ).action(async (options: { config: string }) => {
    const config = await loadHookConfig(options.config);
    readToken(config, options.config);
    if (globals().json) {
      io.out(toJson({ ok: true, config }));
      return;
    }
    const networks = config.networks.map(
      (n) =>
        `  ${n.name.padEnd(10)} bridge ${(n.bridge ?? '-').padEnd(12)} ${n.requireRegistration ? 'registration required' : 'starts unregistered, spooled'}`,
    );
    io.out(
      `${options.config}: valid; host ${config.hostId}, backend ${config.backend.url}, bound ${config.timeouts.hookMs} ms (requests ${config.timeouts.requestMs} ms), spool ${config.spoolDir}\n${networks.join('\n')}\n`,
    );
  });
}
