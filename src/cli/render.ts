import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors/usage-error.js';
import { renderInterfaceXml } from '../libvirt/interface-xml.js';
import { renderNetworkXml } from '../libvirt/network-xml.js';
import { loadSite } from '../site/load.js';
import { findNetwork } from '../site/lookup.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { parseInteger } from './options.js';

/** `ticrypt-net render ...`: print what the site turns into. */
export function addRenderCommands(program: Command, io: CliIo): void {
  const render = program
    .command('render')
    .description('Render configuration from the site: libvirt network and interface XML');
  const globals = () => program.opts<GlobalOptions>();

  render
    .command('network')
    .description('Print the libvirt <network> definition of one network (for virsh net-define)')
    .argument('<name>', 'network name, e.g. secure')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .action(async (name: string, options: { site?: string }) => {
      const site = await loadSite(options.site);
      const xml = renderNetworkXml(site, findNetwork(site, name));
      io.out(globals().json ? toJson({ network: name, xml }) : xml);
    });

  render
    .command('interface')
    .description('Print a domain <interface> element for a VM NIC on a network')
    .requiredOption('--network <name>', 'network name, e.g. secure')
    .requiredOption('--mac <mac>', 'the NIC MAC, e.g. 52:54:00:12:34:56')
    .option('--portgroup <name>', 'a portgroup of the network')
    .option(
      '--form <form>',
      "'network' (<interface type='network'>) or 'bridge' (straight on the OVS bridge)",
      'network',
    )
    .option('--boot <order>', 'boot order of the NIC (1 or more)')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .action(
      async (options: {
        network: string;
        mac: string;
        portgroup?: string;
        form: string;
        boot?: string;
        site?: string;
      }) => {
        if (options.form !== 'network' && options.form !== 'bridge') {
          throw new UsageError(`--form: expected 'network' or 'bridge', found ${JSON.stringify(options.form)}`);
        }
        const site = await loadSite(options.site);
        const xml = renderInterfaceXml({
          network: findNetwork(site, options.network),
          mac: options.mac,
          form: options.form,
          ...(options.portgroup === undefined ? {} : { portgroup: options.portgroup }),
          ...(options.boot === undefined ? {} : { bootOrder: parseInteger('--boot', options.boot, 1, 65535) }),
        });
        io.out(globals().json ? toJson({ network: options.network, mac: options.mac.toLowerCase(), xml }) : xml);
      },
    );

  render
    .command('all')
    .description('Write every network definition to DIR/networks/NAME.xml')
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .action(async (options: { out: string; site?: string }) => {
      const site = await loadSite(options.site);
      const written: string[] = [];
      await mkdir(join(options.out, 'networks'), { recursive: true });
      for (const network of site.networks) {
        const path = join(options.out, 'networks', `${network.name}.xml`);
        await writeFile(path, renderNetworkXml(site, network));
        written.push(path);
      }
      io.out(globals().json ? toJson({ written }) : written.map((path) => `wrote ${path}\n`).join(''));
    });
}
