import type { Command } from 'commander';
import { loadSite } from '../site/load.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

/** `ticrypt-net validate --site FILE`: check a site file and summarize it. */
export function addValidateCommand(program: Command, io: CliIo): void {
  program
    .command('validate')
    .description('Check a site file; print a summary (or, with --json, the resolved site)')
    .requiredOption('--site <file>', 'site file (YAML)')
    .action(async (options: { site: string }) => {
      const site = await loadSite(options.site);
      if (program.opts<GlobalOptions>().json) {
        io.out(toJson({ ok: true, site }));
        return;
      }
      const lines = site.networks.map(
        (n) =>
          `  ${n.name.padEnd(10)} ${n.kind.padEnd(8)} ${n.bridge.padEnd(12)} vlan ${String(n.vlan).padEnd(5)} ${n.subnet.padEnd(18)} gw ${n.gateway.padEnd(15)} dhcp ${n.dhcp.start}-${n.dhcp.end} (${n.dhcp.size}) egress ${n.egress}, dns ${n.dns}`,
      );
      io.out(
        `${options.site}: valid site ${JSON.stringify(site.name)}, ${site.networks.length} networks, ${site.hosts.length} hosts\n${lines.join('\n')}\n`,
      );
    });
}
