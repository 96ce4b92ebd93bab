import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../errors/usage-error.js';
import type { AllowEntryBody } from '../protocol/api.js';
import { adminClient, type ConnectionOptions, withConnection } from './connection.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

/**
 * Parse `PROTO:TARGET[:PORTS]` (`tcp:203.0.113.10:443`, `udp:203.0.113.0/24:5000-5100`,
 * `icmp:198.51.100.7`, `tcp:pypi.org:443`) into an API allow entry. The
 * backend validates it; this only splits.
 */
export function parseEntryArgument(text: string): AllowEntryBody {
  const [protocol, target, ports, extra] = text.split(':');
  if (protocol === undefined || target === undefined || target === '' || extra !== undefined) {
    throw new UsageError(
      `allow entry: expected PROTO:TARGET[:PORTS] like tcp:203.0.113.10:443, found ${JSON.stringify(text)}`,
    );
  }
  const where = /^[0-9./]+$/.test(target) ? { address: target } : { domain: target };
  return {
    ...where,
    protocol,
    ...(ports === undefined ? {} : { ports: /^[0-9]+$/.test(ports) ? Number(ports) : ports }),
  };
}

/**
 * One allow entry as the CLI prints it: `PROTO:TARGET[:PORTS]`, the form
 * {@link parseEntryArgument} reads, plus the special-use ranges a domain
 * entry's answers may open.
 *
 * @example formatEntry({ domain: 'intranet.example', protocol: 'tcp', ports: 443, specialRanges: ['10.9.0.0/16'] })
 * // 'tcp:intranet.example:443 special-use:10.9.0.0/16'
 */
export function formatEntry(entry: AllowEntryBody): string {
  const target = `${entry.protocol}:${entry.address ?? entry.domain ?? ''}`;
  const ports = entry.ports === undefined ? '' : `:${entry.ports}`;
  const special = (entry.specialRanges ?? []).length === 0 ? '' : ` special-use:${entry.specialRanges?.join(',')}`;
  return `${target}${ports}${special}`;
}

/** `ticrypt-net allow set|get|ls`: a VM's egress allow-list, through the backend API (admin token). */
export function addAllowCommands(program: Command, io: CliIo): void {
  const allow = program.command('allow').description('VM egress allow-lists on the backend (admin token)');
  const json = () => program.opts<GlobalOptions>().json === true;

  withConnection(
    allow
      .command('set')
      .description('Replace a VM allow-list: entries PROTO:TARGET[:PORTS], or --file; no entries = no egress')
      .argument('<vm-uuid>', 'the libvirt domain UUID')
      .argument(
        '[entries...]',
        'e.g. tcp:203.0.113.10:443 udp:203.0.113.0/24:5000-5100 icmp:198.51.100.7 tcp:pypi.org:443',
      )
      .option(
        '--file <file>',
        'YAML/JSON list of entries {address|domain, protocol, ports?, specialRanges?} (specialRanges: CIDRs in special-use space a domain entry may open)',
      ),
  ).action(async (vm: string, args: string[], options: ConnectionOptions & { file?: string }) => {
    let entries: unknown = args.map(parseEntryArgument);
    if (options.file !== undefined) {
      if (args.length > 0) throw new UsageError('allow set: expected entries or --file, found both');
      entries = parseYaml(await readFile(options.file, 'utf8'));
    }
    const answer = await (await adminClient(options)).setAllowList(vm, entries);
    io.out(
      json()
        ? toJson(answer)
        : `${vm}: ${answer.entries.length} entries\n${answer.entries.map((e) => `  ${formatEntry(e)}\n`).join('')}`,
    );
  });

  withConnection(allow.command('get').description('Print a VM allow-list').argument('<vm-uuid>')).action(
    async (vm: string, options: ConnectionOptions) => {
      const answer = await (await adminClient(options)).allowList(vm);
      io.out(json() ? toJson(answer) : answer.entries.map((e) => `${formatEntry(e)}\n`).join(''));
    },
  );

  withConnection(allow.command('ls').description('List every VM with an allow-list')).action(
    async (options: ConnectionOptions) => {
      const answer = await (await adminClient(options)).allowLists();
      io.out(
        json()
          ? toJson(answer)
          : answer.allowLists.map((l) => `${l.vmUuid}\t${l.entries.map(formatEntry).join(' ')}\n`).join(''),
      );
    },
  );
}
