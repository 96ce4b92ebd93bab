import { describe, expect, it } from 'vitest';
import { ConntrackError } from '../../src/errors/conntrack-error.js';
import { DnsmasqProcessError } from '../../src/errors/dnsmasq-process-error.js';
import { HostCommandError } from '../../src/errors/host-command-error.js';
import { IpError } from '../../src/errors/ip-error.js';
import { NftError } from '../../src/errors/nft-error.js';
import { NmcliError } from '../../src/errors/nmcli-error.js';
import { OvsVsctlError } from '../../src/errors/ovs-vsctl-error.js';
import type { ProgramError } from '../../src/errors/program-error.js';
import { UsageError } from '../../src/errors/usage-error.js';
import { VirshError } from '../../src/errors/virsh-error.js';
import { inNetns, netnsWrapper } from '../../src/exec/netns.js';
import { programError } from '../../src/exec/program-errors.js';
import { programRunner, runChecked, runProgram, startInteractive } from '../../src/exec/run.js';

describe('namespaces', () => {
  it('runs a command through ip netns exec, as arguments', () => {
    expect(netnsWrapper('t1234-backend')(['dnsmasq', '--test'])).toEqual([
      'ip',
      'netns',
      'exec',
      't1234-backend',
      'dnsmasq',
      '--test',
    ]);
    expect(inNetns(undefined, ['nft', '-f', '-'])).toEqual(['nft', '-f', '-']);
  });

  it.each(['', '..', 'a b', 'a/b', 'x;reboot', 'a\nb'])('refuses the namespace name %j', (name) => {
    expect(() => netnsWrapper(name)).toThrow(UsageError);
    expect(() => inNetns(name, ['true'])).toThrow(/^netns: expected a namespace name/);
  });
});

describe('running a program', () => {
  it('gives back the whole result, never through a shell', async () => {
    const result = await runProgram(
      process.execPath,
      [
        '-e',
        'process.stdout.write(require("fs").readFileSync(0, "utf8") + process.argv[1]); process.stderr.write("e"); process.exit(3)',
        '$HOME;x',
      ],
      {
        input: 'in:',
      },
    );
    expect(result).toMatchObject({ exitCode: 3, stdout: 'in:$HOME;x', stderr: 'e' });
    expect(result.command[0]).toBe(process.execPath);
  });

  it('says why a program could not run', async () => {
    const result = await runProgram('ticrypt-net-no-such-program', []);
    expect(result.exitCode).toBeUndefined();
    expect(result.stderr).toMatch(/ENOENT/);
  });

  it('runChecked throws the program error, naming what it was doing', async () => {
    const run = programRunner();
    await expect(runChecked(run, 'to say hello', 'ticrypt-net-no-such-program', [])).rejects.toThrow(
      /^ticrypt-net-no-such-program failed \(could not run\) to say hello: .*ENOENT/,
    );
    expect(await runChecked(run, 'to print', process.execPath, ['-e', 'process.stdout.write("ok")'])).toBe('ok');
  });
});

describe('each program its own error, one message shape', () => {
  const failure = (program: string) => ({ command: [program, 'x'], exitCode: 1, stderr: '\nfirst line\nsecond' });
  it.each<[string, new (...args: never[]) => ProgramError, string]>([
    ['nft', NftError, 'E_NFT_APPLY'],
    ['conntrack', ConntrackError, 'E_CONNTRACK'],
    ['dnsmasq', DnsmasqProcessError, 'E_DNSMASQ_PROCESS'],
    ['ovs-vsctl', OvsVsctlError, 'E_HOST_COMMAND'],
    ['ip', IpError, 'E_HOST_COMMAND'],
    ['nmcli', NmcliError, 'E_HOST_COMMAND'],
    ['virsh', VirshError, 'E_HOST_COMMAND'],
    ['cat', HostCommandError, 'E_HOST_COMMAND'],
  ])('%s', (program, Kind, code) => {
    const error = programError(failure(program), 'doing it');
    expect(error).toBeInstanceOf(Kind);
    expect(error.code).toBe(code);
    expect(error.message).toBe(
      program === 'conntrack'
        ? 'conntrack failed (exit 1) deleting connections: first line'
        : `${program} failed (exit 1) doing it: first line`,
    );
    expect(error).toMatchObject({ program, exitCode: 1, stderr: '\nfirst line\nsecond' });
  });

  it('says how it ended: a signal, or not at all', () => {
    expect(programError({ command: ['ip'], signal: 'SIGTERM', stderr: '' }, 'listing').message).toBe(
      'ip failed (signal SIGTERM) listing: (no output)',
    );
    expect(programError({ command: ['virsh'], stderr: 'spawn virsh ENOENT' }, 'reading').message).toBe(
      'virsh failed (could not run) reading: spawn virsh ENOENT',
    );
  });

  it('says when a long-lived program refused one request and runs on', () => {
    const error = new NftError({
      exitCode: undefined,
      stderr: 'Error: syntax error\nadd x',
      script: 'add x',
      command: ['nft', '-i'],
      action: 'applying a DNS transaction',
      refused: true,
    });
    expect(error.message).toBe('nft failed (refused) applying a DNS transaction: Error: syntax error');
    expect(error).toMatchObject({ command: ['nft', '-i'], script: 'add x', exitCode: undefined });
  });
});

describe('an interactive program', () => {
  it('reads requests on its stdin and answers on its stderr, with LC_ALL=C, never through a shell', async () => {
    const echo = 'process.stdin.on("data", (d) => process.stderr.write(process.env.LC_ALL + ":" + d));';
    const { command, subprocess } = startInteractive(process.execPath, ['-e', echo, '$HOME;x']);
    expect(command).toEqual([process.execPath, '-e', echo, '$HOME;x']);
    const answer = new Promise<string>((resolve) => subprocess.stderr.once('data', (d: Buffer) => resolve(String(d))));
    subprocess.stdin.write('ping\n');
    expect(await answer).toBe('C:ping\n');
    subprocess.stdin.end();
    expect((await subprocess).exitCode).toBe(0);
  });

  it('refuses a bad namespace name before starting anything', () => {
    expect(() => startInteractive('nft', ['-i'], { netns: 'a b' })).toThrow(UsageError);
  });
});
