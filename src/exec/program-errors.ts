/**
 * Each program's own error: the one table from a failed run to the error its
 * caller catches. For: `./run.ts` and the edges that judge a run themselves.
 * May not: run anything, or decide that a run failed (its callers do).
 */
import { ConntrackError } from '../errors/conntrack-error.js';
import { DnsmasqProcessError } from '../errors/dnsmasq-process-error.js';
import { HostCommandError } from '../errors/host-command-error.js';
import { IpError } from '../errors/ip-error.js';
import { NftError } from '../errors/nft-error.js';
import { NmcliError } from '../errors/nmcli-error.js';
import { OvsOfctlError } from '../errors/ovs-ofctl-error.js';
import { OvsVsctlError } from '../errors/ovs-vsctl-error.js';
import { SysctlError } from '../errors/sysctl-error.js';
import { SystemctlError } from '../errors/systemctl-error.js';
import type { ProgramError, ProgramFailure } from '../errors/program-error.js';
import { VirshError } from '../errors/virsh-error.js';

type Make = (failure: ProgramFailure, doing: string, script?: string) => ProgramError;

const host =
  (Kind: typeof HostCommandError): Make =>
  (f, doing) =>
    new Kind(doing, f.command, f.exitCode, f.stderr, { signal: f.signal, netns: f.netns });

const BY_PROGRAM: Readonly<Record<string, Make>> = {
  nft: (f, doing, script = '') =>
    new NftError({ exitCode: f.exitCode, stderr: f.stderr, script, action: doing, signal: f.signal, netns: f.netns }),
  conntrack: (f) => new ConntrackError(f),
  dnsmasq: (f, doing) => new DnsmasqProcessError({ ...f, action: doing }, ''),
  'ovs-vsctl': host(OvsVsctlError),
  'ovs-ofctl': host(OvsOfctlError),
  ip: host(IpError),
  nmcli: host(NmcliError),
  virsh: host(VirshError),
  sysctl: host(SysctlError),
  systemctl: host(SystemctlError),
};

/**
 * The error of a failed run, by the program that failed (any other program:
 * {@link HostCommandError}).
 *
 * @param doing what it was doing, as the message says it: `applying table inet ticrypt`, `to create bridge br-secure`.
 * @param script what was fed to its stdin, for the errors that keep it (nft).
 */
export function programError(failure: ProgramFailure, doing: string, script?: string): ProgramError {
  const program = failure.command[0] ?? '';
  return (BY_PROGRAM[program] ?? host(HostCommandError))(failure, doing, script);
}
