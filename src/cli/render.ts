import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { renderDnsmasqConfig } from '../backend/dnsmasq/config.js';
import { hostEntriesPaths } from '../backend/dnsmasq/host-entries.js';
import { renderRuleset } from '../backend/nft/ruleset.js';
import type { Network, Site } from '../site/model.js';
import { UsageError } from '../errors/usage-error.js';
import { renderInterfaceXml } from '../libvirt/interface-xml.js';
import { renderNetworkXml } from '../libvirt/network-xml.js';
import { loadSite } from '../site/load.js';
import { findNetwork } from '../site/lookup.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { parseInteger } from './options.js';
import { DEFAULT_STATE_DIR, NFT_TABLE_REF } from '../names.js';

/** The empty-state table: what the backend applies before any VM registers. */
function rulesetText(site: Site): string {
  return renderRuleset(site, { registrations: [], allowLists: [] });
}

/** A network's dnsmasq config with the backend's default paths under `stateDir`. */
function dnsmasqText(site: Site, network: Network, stateDir: string): string {
  const dir = join(stateDir, 'dnsmasq', network.name);
  const hosts = hostEntriesPaths(dir);
  return renderDnsmasqConfig(site, network, {
    hostsDir: hosts.hostsDir,
    hostsFile: hosts.baseFile,
    leaseFile: join(dir, 'leases'),
    pidFile: join(dir, 'dnsmasq.pid'),
  });
}

/** `ticrypt-net render ...`: print what the site turns into. */
export function addRenderCommands(program: Command, io: CliIo): void {
  const render = program
    .command('render')
    .description('Render configuration from the site: libvirt XML, the nftables table, dnsmasq configs');
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
    .command('nft')
    .description('Print table inet ticrypt as the backend applies it with no VM registered (for nft -c -f)')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .action(async (options: { site?: string }) => {
      const site = await loadSite(options.site);
      const text = rulesetText(site);
      io.out(globals().json ? toJson({ table: NFT_TABLE_REF, nft: text }) : text);
    });

  render
    .command('dnsmasq')
    .description("Print one network's dnsmasq config as the backend writes it")
    .argument('<network>', 'network name, e.g. secure')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .option('--state-dir <dir>', 'the backend state directory the paths point into', DEFAULT_STATE_DIR)
    .action(async (name: string, options: { site?: string; stateDir: string }) => {
      const site = await loadSite(options.site);
      const text = dnsmasqText(site, findNetwork(site, name), options.stateDir);
      io.out(globals().json ? toJson({ network: name, config: text }) : text);
    });

  render
    .command('all')
    .description('Write networks/NAME.xml, nft/ticrypt.nft and dnsmasq/NAME.conf under DIR')
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .action(async (options: { out: string; site?: string }) => {
      const site = await loadSite(options.site);
      const written: string[] = [];
      const write = async (path: string, text: string) => {
        await mkdir(join(path, '..'), { recursive: true });
        await writeFile(path, text);
        written.push(path);
      };
      for (const network of site.networks) {
        await write(join(options.out, 'networks', `${network.name}.xml`), renderNetworkXml(site, network));
      }
      await write(join(options.out, 'nft', 'ticrypt.nft'), rulesetText(site));
      for (const network of site.networks) {
        await write(
          join(options.out, 'dnsmasq', `${network.name}.conf`),
          dnsmasqText(site, network, DEFAULT_STATE_DIR),
        );
      }
      io.out(globals().json ? toJson({ written }) : written.map((path) => `wrote ${path}\n`).join(''));
    });
}
