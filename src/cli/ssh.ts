import type { Command } from 'commander';
import type { SshForwardAnswer, VmSshAnswer } from '../protocol/api.js';
import { adminClient, type ConnectionOptions, withConnection } from './connection.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

/** One forward as a line: VM, network, `address:port -> ip:22`, who may connect. */
function line(f: SshForwardAnswer): string {
  const sources = `${f.narrowed ? 'narrowed to ' : ''}${f.sources.length === 0 ? 'nobody' : f.sources.join(',')}`;
  return `${f.vmUuid}\t${f.vmName}\t${f.network}\t${f.address ?? '*'}:${f.port} -> ${f.ip}:22\t${sources}\n`;
}

function vmText(answer: VmSshAnswer): string {
  const sources = answer.sources === null ? 'the site sources' : answer.sources.join(', ') || 'nobody';
  return `${answer.vmUuid}: SSH from ${sources}\n${answer.forwards.map(line).join('')}`;
}

/** `ticrypt-net ssh ls|sources`: SSH access to VMs through the backend (admin token). */
export function addSshCommands(program: Command, io: CliIo): void {
  const ssh = program
    .command('ssh')
    .description('SSH access to VMs through the backend: a backend port per NIC, to its port 22 (admin token)');
  const json = () => program.opts<GlobalOptions>().json === true;

  withConnection(
    ssh
      .command('ls')
      .description('List the SSH forwards: VM, name, network, backend address:port -> VM address:22, sources')
      .option('--vm <uuid>', "only this VM's (and its narrowed sources)"),
  ).action(async (options: ConnectionOptions & { vm?: string }) => {
    const admin = await adminClient(options);
    if (options.vm !== undefined) {
      const answer = await admin.vmSsh(options.vm);
      io.out(json() ? toJson(answer) : vmText(answer));
      return;
    }
    const answer = await admin.sshForwards();
    io.out(json() ? toJson(answer) : answer.forwards.map(line).join(''));
  });

  const sources = ssh.command('sources').description("Who may SSH into a VM: narrow the site's client networks");
  withConnection(
    sources
      .command('set')
      .description('Narrow who may SSH into a VM to these client networks (inside the site sources); none = nobody')
      .argument('<vm-uuid>', 'the libvirt domain UUID')
      .argument('[cidrs...]', 'IPv4 networks or addresses, e.g. 198.51.100.0/24 203.0.113.7'),
  ).action(async (vm: string, cidrs: string[], options: ConnectionOptions) => {
    const answer = await (await adminClient(options)).setSshSources(vm, cidrs);
    io.out(json() ? toJson(answer) : vmText(answer));
  });
  withConnection(
    sources.command('reset').description("Give a VM each network's site sources again").argument('<vm-uuid>'),
  ).action(async (vm: string, options: ConnectionOptions) => {
    const answer = await (await adminClient(options)).resetSshSources(vm);
    io.out(json() ? toJson(answer) : vmText(answer));
  });
}
