import type { Command } from 'commander';
import { adminClient, type ConnectionOptions, withConnection } from './connection.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

/** `ticrypt-net placement set|get`: where a VM may run, through the backend API (admin token). */
export function addPlacementCommands(program: Command, io: CliIo): void {
  const placement = program
    .command('placement')
    .description('Where each VM may run: only those hosts may register its NICs (admin token)');
  const json = () => program.opts<GlobalOptions>().json === true;

  withConnection(
    placement
      .command('set')
      .description(
        'Place a VM on these hosts (both during a migration, then the destination); no hosts = nowhere, revoking its registrations',
      )
      .argument('<vm-uuid>', 'the libvirt domain UUID')
      .argument('[hosts...]', 'host ids, as their hook.yaml and tokens name them'),
  ).action(async (vm: string, hosts: string[], options: ConnectionOptions) => {
    const answer = await (await adminClient(options)).setPlacement(vm, hosts);
    io.out(
      json()
        ? toJson(answer)
        : `${vm}: ${answer.hosts.length === 0 ? 'placed nowhere' : `placed on ${answer.hosts.join(', ')}`}${answer.revoked > 0 ? `; ${answer.revoked} registration(s) revoked` : ''}\n`,
    );
  });

  withConnection(placement.command('get').description('Print where a VM may run').argument('<vm-uuid>')).action(
    async (vm: string, options: ConnectionOptions) => {
      const answer = await (await adminClient(options)).placement(vm);
      io.out(json() ? toJson(answer) : `${answer.hosts.join('\n')}${answer.hosts.length > 0 ? '\n' : ''}`);
    },
  );
}
