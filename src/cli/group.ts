/**
 * `ticrypt-net group set|get`: a VM's group on `peers: groups` networks (VMs
 * of one group reach each other and the gateway, on any host), through the
 * backend API (admin token). May not: decide anything: it parses, calls, prints.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors/usage-error.js';
import type { VmGroupAnswer } from '../protocol/api.js';
import { adminClient, type ConnectionOptions, withConnection } from './connection.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

/** `ticrypt-net group set|get`. */
export function addGroupCommands(program: Command, io: CliIo): void {
  const group = program
    .command('group')
    .description("A VM's group on peers: groups networks (admin token); the hosts pin it at their next sync");
  const json = () => program.opts<GlobalOptions>().json === true;
  const print = (answer: VmGroupAnswer) =>
    io.out(json() ? toJson(answer) : `${answer.vmUuid}: ${answer.group ?? 'no group (the gateway only)'}\n`);

  withConnection(
    group
      .command('set')
      .description('Put a VM in a group (created when new), or in none with --none')
      .argument('<vm-uuid>', 'the libvirt domain UUID')
      .argument('[name]', 'the group: a lower-case name')
      .option('--none', 'no group: the VM reaches the gateway only'),
  ).action(async (vm: string, name: string | undefined, options: ConnectionOptions & { none?: boolean }) => {
    if ((name === undefined) === (options.none !== true)) {
      throw new UsageError(
        `group set: expected a group name or --none, found ${name === undefined ? 'neither' : 'both'}`,
      );
    }
    print(await (await adminClient(options)).setGroup(vm, name ?? null));
  });

  withConnection(group.command('get').description("Print a VM's group").argument('<vm-uuid>')).action(
    async (vm: string, options: ConnectionOptions) => {
      print(await (await adminClient(options)).group(vm));
    },
  );
}
