import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { renderDnsmasqConfig, type DnsmasqConfigOptions } from '../dnsmasq/config.js';
import { HostEntries, hostEntriesPaths } from '../dnsmasq/host-entries.js';
import { checkDnsmasqConfig, DnsmasqProcess, readPidFile, stopPid } from '../dnsmasq/process.js';
import type { Network, Site } from '../../site/model.js';
import type { Registration } from '../../protocol/api.js';
import { DnsmasqProcessError } from '../../errors/dnsmasq-process-error.js';
import { RegistryError } from '../../errors/registry-error.js';

/** How the fleet runs dnsmasq. */
export interface DnsmasqFleetOptions {
  /** Per network: `<stateDir>/dnsmasq/<network>/{dnsmasq.conf,hosts.base,hosts/,leases,dnsmasq.pid}`. */
  readonly stateDir: string;
  /** Run each dnsmasq inside this network namespace (tests). */
  readonly netns?: string;
  /** Each log line a dnsmasq writes, with its network. */
  readonly onLog?: (network: string, line: string) => void;
  /** A dnsmasq that exits on its own: called, then it is restarted after `restartDelayMs`. */
  readonly onExit?: (network: string, detail: string) => void;
  readonly restartDelayMs?: number;
  /**
   * A removed host entry is dropped by dnsmasq on SIGHUP, which re-reads every
   * entry (about 0.16 s of CPU at 10,000 entries): removals within this many ms
   * share one SIGHUP. The firewall has already cut the NIC off by then.
   * Default: 250 ms, or 0.1 ms per entry on larger networks (1 s at 10,000),
   * at most 2 s, so dnsmasq spends at most about a sixth of a core on reloads
   * however fast VMs come and go. 0 sends one per removal.
   */
  readonly reloadDelayMs?: number;
  /** Extra config options (query or DHCP logging). */
  readonly config?: Pick<DnsmasqConfigOptions, 'logQueries' | 'logDhcp'>;
}

interface Member {
  readonly network: Network;
  readonly dir: string;
  readonly hosts: HostEntries;
  process?: DnsmasqProcess;
  stopping: boolean;
  reloadTimer: NodeJS.Timeout | undefined;
}

/**
 * One supervised dnsmasq per site network, with its host entry directory.
 * A registration becomes a host entry file (picked up without a reload);
 * removal deletes the file and SIGHUPs.
 */
export class DnsmasqFleet {
  private readonly members = new Map<string, Member>();

  constructor(
    private readonly site: Site,
    private readonly options: DnsmasqFleetOptions,
  ) {
    for (const network of site.networks) {
      const dir = join(options.stateDir, 'dnsmasq', network.name);
      const member: Member = {
        network,
        dir,
        stopping: false,
        reloadTimer: undefined,
        hosts: new HostEntries(hostEntriesPaths(dir), network, () => this.scheduleReload(member)),
      };
      this.members.set(network.name, member);
    }
  }

  /** Write every config and host entry from `registrations`, then (re)start every dnsmasq. */
  async start(registrations: readonly Registration[]): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true });
    await assertTraversable(this.options.stateDir);
    for (const member of this.members.values()) {
      await mkdir(member.dir, { recursive: true });
      await member.hosts.start(registrations.filter((r) => r.network === member.network.name));
      await this.restart(member);
    }
  }

  /** Give a registered NIC its DHCP reservation. */
  async put(registration: Registration): Promise<void> {
    await this.member(registration.network).hosts.put(registration);
  }

  /** Take a NIC's reservation away (file removed, dnsmasq SIGHUPed). */
  async remove(registration: Registration): Promise<void> {
    await this.member(registration.network).hosts.remove(registration);
  }

  /** Stop every dnsmasq (leases stay in their files). */
  async stop(): Promise<void> {
    for (const member of this.members.values()) {
      member.stopping = true;
      clearTimeout(member.reloadTimer);
      member.reloadTimer = undefined;
      await member.process?.stop();
    }
  }

  /** The pid of a network's dnsmasq, if running. */
  pid(network: string): number | undefined {
    const process = this.members.get(network)?.process;
    return process?.running ? process.pid : undefined;
  }

  /**
   * Within `reloadDelayMs`, once for every removal in that window: fold the
   * host entries into the base file, then SIGHUP the network's dnsmasq.
   */
  private scheduleReload(member: Member): void {
    const reload = async () => {
      member.reloadTimer = undefined;
      try {
        await member.hosts.compact();
        if (member.process?.running) member.process.reload();
      } catch (error) {
        this.options.onExit?.(member.network.name, `reload failed: ${(error as Error).message}`);
      }
    };
    const delay = this.options.reloadDelayMs ?? Math.min(2000, Math.max(250, member.hosts.size / 10));
    if (delay === 0) {
      void reload();
      return;
    }
    member.reloadTimer ??= setTimeout(() => void reload(), delay).unref();
  }

  private member(name: string): Member {
    const member = this.members.get(name);
    if (!member) {
      throw new RegistryError(
        'E_UNKNOWN_NETWORK',
        `No dnsmasq for network ${name}: expected one of ${[...this.members.keys()].join(', ')}`,
      );
    }
    return member;
  }

  private paths(member: Member) {
    return {
      confFile: join(member.dir, 'dnsmasq.conf'),
      pidFile: join(member.dir, 'dnsmasq.pid'),
      leaseFile: join(member.dir, 'leases'),
      hostsDir: member.hosts.paths.hostsDir,
      hostsFile: member.hosts.paths.baseFile,
    };
  }

  private async restart(member: Member): Promise<void> {
    const paths = this.paths(member);
    await mkdir(member.dir, { recursive: true });
    const text = renderDnsmasqConfig(this.site, member.network, {
      ...this.options.config,
      hostsDir: paths.hostsDir,
      hostsFile: paths.hostsFile,
      leaseFile: paths.leaseFile,
      pidFile: paths.pidFile,
    });
    await writeFile(paths.confFile, text);
    const run = this.options.netns === undefined ? {} : { netns: this.options.netns };
    await checkDnsmasqConfig(paths.confFile, run);
    const previous = member.process;
    member.stopping = true;
    await previous?.stop();
    // A daemon killed with SIGKILL leaves its dnsmasq running, holding the sockets the new one needs.
    if (previous === undefined) await endLeftover(paths.pidFile, paths.confFile);
    member.stopping = false;
    const started = await DnsmasqProcess.start({
      ...run,
      confFile: paths.confFile,
      pidFile: paths.pidFile,
      onLog: (line) => this.options.onLog?.(member.network.name, line),
    });
    member.process = started;
    void started.exited.then(async (exit) => {
      if (member.stopping || member.process !== started) return;
      this.options.onExit?.(member.network.name, `exit code ${String(exit.exitCode)}, signal ${String(exit.signal)}`);
      await new Promise((resolve) => setTimeout(resolve, this.options.restartDelayMs ?? 1000));
      if (!member.stopping && member.process === started) await this.restart(member).catch(() => undefined);
    });
  }
}

/** Whether `pid` is a live dnsmasq started with `confFile` (a zombie has an empty cmdline: no). */
async function isDnsmasqOf(pid: number, confFile: string): Promise<boolean> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  return basename(argv[0] ?? '') === 'dnsmasq' && argv.includes(`--conf-file=${confFile}`);
}

/** End the dnsmasq a previous daemon left (named by the pid file, checked by its command line): SIGTERM, then SIGKILL. */
async function endLeftover(pidFile: string, confFile: string, timeoutMs = 5000): Promise<void> {
  const pid = await readPidFile(pidFile);
  if (pid !== undefined && (await isDnsmasqOf(pid, confFile))) await stopPid(pid, timeoutMs);
}

/**
 * dnsmasq reads host entries after dropping to an unprivileged user, so every
 * directory above them must be traversable by others; a state directory under
 * a private (0700) parent would make every DHCP request "ignored".
 *
 * @throws {Error} naming the directory and the fix.
 */
async function assertTraversable(dir: string): Promise<void> {
  for (let at = resolve(dir); ; at = dirname(at)) {
    const { mode } = await stat(at);
    if ((mode & 0o001) === 0) {
      const octal = (mode & 0o777).toString(8).padStart(4, '0');
      throw new DnsmasqProcessError(
        {
          command: ['dnsmasq'],
          stderr: `${at} has mode ${octal}, but dnsmasq reads its host entries as an unprivileged user: make it traversable (chmod o+x ${at}) or choose another --state-dir`,
          action: 'preparing',
        },
        `state directory ${dir}`,
      );
    }
    if (at === dirname(at)) return;
  }
}
