/**
 * Fail closed, and recover: the backend's watch over `table inet ticrypt`
 * and the policy routing rules that make its absence safe.
 *
 * At start, before the table is first applied, the guard installs the
 * fail-closed `ip rule`s (see `guard/rules.ts`) and the gateway interfaces'
 * ARP settings; from then on nothing forwards to or from a VM network unless
 * the table marked it. Once the table is built it watches: `nft -j monitor`
 * (any change to the table, its chains or rules that is not the backend's own
 * is a loss), `ip monitor rule`, and a check every few seconds (the table's
 * chains present, the rules present, ARP settings in place). On a loss it
 * counts it (`ticrypt_guard_losses_total`), writes an audit line, reports it
 * on `/healthz` (503), tells `onTableLost` (the DNS front stops opening) and
 * rebuilds the table from the store (with the monitor paused, so its own
 * rebuild is not taken for someone else's), retrying until it succeeds; then
 * it audits the recovery.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Site } from '../../site/model.js';
import { programRunner, type ProgramRunner } from '../../exec/run.js';
import type { Metrics } from '../api/metrics.js';
import { endLeftoverWatch, spawnWatch, type WatchStarter, type Watcher } from '../../exec/watch.js';
import { describeRule, failClosedRules, missingRules, ruleArgs, type FailClosedRule } from '../guard/rules.js';
import { classifyTableEvent } from '../guard/table-events.js';
import { chainNames } from '../nft/ruleset.js';
import type { AuditEvent } from './registry.js';
import { SerialQueue } from './serial.js';
import { nftCheck } from '../checks.js';
import { effectiveSetting, interfaceKey, serviceAssertedSettings, settingHolds, sysctlPath } from '../sysctls.js';

/** What the guard runs with. */
export interface TableGuardOptions {
  readonly site: Site;
  /** Rebuilds the table (and dnsmasq) from the store, in the registry's serial queue. */
  readonly rebuild: () => Promise<void>;
  /**
   * Told at once when the table is found lost, before the repair starts (the
   * DNS front stops opening: the rebuild will empty its sets).
   */
  readonly onTableLost?: () => void;
  readonly audit: (event: AuditEvent) => void;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Runs `ip` and `nft` (default: the real ones, in the current namespace). */
  readonly run?: ProgramRunner;
  /** Starts the long-running monitors (default: the real programs). */
  readonly watch?: WatchStarter;
  /** Reads and writes a /proc/sys file (default: the real ones). */
  readonly sysctl?: { read(path: string): Promise<string>; write(path: string, value: string): Promise<void> };
  /** The state check's period, ms (default 1000: `nft -j list chains` and `ip -j rule show` cost a few ms). */
  readonly checkIntervalMs?: number;
  /** The wait before a failed repair is tried again, ms (default 1000). */
  readonly retryMs?: number;
  /** Where the monitors' pid files go, so a successor ends those of a killed service (default: none kept). */
  readonly pidDir?: string;
}

/** How long after the table monitor starts the chains are checked every period (it may not listen yet). */
const MONITOR_SETTLE_MS = 30_000;

const realSysctl = {
  read: (path: string) => readFile(path, 'utf8'),
  write: (path: string, value: string) => writeFile(path, `${value}\n`),
};

/** See the module comment. */
export class TableGuard {
  private readonly run: ProgramRunner;
  private readonly startWatch: WatchStarter;
  private readonly sysctl: NonNullable<TableGuardOptions['sysctl']>;
  private readonly rules: FailClosedRule[];
  private readonly chains: string[];
  private readonly queue = new SerialQueue();
  /** What is wrong now, by what: shown on /healthz until repaired. */
  private readonly problems = new Map<string, string>();
  private tableWatch: Watcher | undefined;
  private ruleWatch: Watcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticks = 0;
  private lastRepair = 0;
  private tableWatchStarted = 0;
  private repairing = false;

  constructor(private readonly options: TableGuardOptions) {
    this.run = options.run ?? programRunner({ timeoutMs: 10_000 });
    this.startWatch = options.watch ?? spawnWatch;
    this.sysctl = options.sysctl ?? realSysctl;
    this.rules = failClosedRules(options.site);
    this.chains = chainNames(options.site);
  }

  /**
   * Install the fail-closed rules and ARP settings (idempotent). Call before
   * the table is first applied: until then, they are what keeps VM traffic in.
   *
   * @throws Error when an IPv4 rule cannot be added (the backend must not run without them).
   */
  async prepare(): Promise<void> {
    if (this.options.pidDir !== undefined) {
      await mkdir(this.options.pidDir, { recursive: true });
      for (const [file, program] of [
        [this.pidFile('nft'), 'nft'],
        [this.pidFile('ip'), 'ip'],
      ] as const) {
        if (file !== undefined && (await endLeftoverWatch(file, program)))
          this.options.logger?.warn({ pidFile: file }, 'ended a monitor a killed predecessor left running');
      }
    }
    const added = await this.ensureRules(true);
    if (added.length > 0) this.options.logger?.info({ rules: added }, 'installed the fail-closed ip rules');
    await this.ensureSysctls();
  }

  /** Start watching (after the table was first built): monitors, the periodic check, and a first check. */
  async watch(): Promise<void> {
    this.startTableWatch();
    this.ruleWatch = this.startWatch(
      ['ip', 'monitor', 'rule'],
      () => this.suspect('ip rules changed'),
      (detail) => this.restartRuleWatch(detail),
      this.pidFile('ip'),
    );
    this.timer = setInterval(() => this.tick(), this.options.checkIntervalMs ?? 1000);
    this.timer.unref();
    this.options.metrics?.healthy.set(1);
    await this.check('watch started');
  }

  private pidFile(program: 'nft' | 'ip'): string | undefined {
    return this.options.pidDir === undefined ? undefined : join(this.options.pidDir, `${program}-monitor.pid`);
  }

  /** What is wrong now (empty: healthy): for `/healthz`. */
  health(): string[] {
    return [...this.problems.values()];
  }

  /** Something may be wrong (a failed change, an event): check soon, in order with other checks. */
  suspect(reason: string): void {
    void this.check(reason).catch((error: unknown) =>
      this.options.logger?.error({ err: error, reason }, 'guard check failed'),
    );
  }

  /** Stop watching (the rules stay: the table stays too, and VMs keep what they have). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.retry !== undefined) clearTimeout(this.retry);
    await Promise.all([this.tableWatch?.stop(), this.ruleWatch?.stop()]);
    await this.queue.run(async () => undefined);
  }

  /**
   * The periodic check: the table's chains every period while the table
   * monitor may still be blind (`nft monitor` fetches the whole ruleset before
   * it listens: seconds at 10,000 VMs), every fifth period afterwards and for
   * the rules and ARP settings (`ip monitor rule` reports rule changes at once).
   * Each check forks programs from a large process: fewer keep registrations fast.
   */
  private tick(): void {
    this.ticks += 1;
    const fresh = Date.now() - this.tableWatchStarted < MONITOR_SETTLE_MS;
    if (!fresh && this.ticks % 5 !== 0) return;
    void this.check('periodic check', this.ticks % 5 === 0).catch((error: unknown) =>
      this.options.logger?.error({ err: error }, 'guard check failed'),
    );
  }

  /** Check the table's chains and (unless `tableOnly`) the rules and the ARP settings; a missing piece is a loss. */
  check(reason: string, full = true): Promise<void> {
    return this.queue.run(async () => {
      if (this.stopped || this.repairing) return;
      const missingChains = await this.missingChains();
      if (missingChains.length > 0) {
        this.lost('table', `${reason}: chains missing from table inet ticrypt: ${missingChains.join(', ')}`);
      }
      if (!full) return;
      const added = await this.ensureRules(false);
      if (added.length > 0) {
        this.loss('rules', `${reason}: fail-closed ip rules missing, added again: ${added.join('; ')}`);
        this.recovered('rules', 'ip rules re-added');
      }
      await this.ensureSysctls();
    });
  }

  private startTableWatch(): void {
    this.tableWatchStarted = Date.now();
    this.tableWatch = this.startWatch(
      ['nft', '-j', 'monitor'],
      (line) => {
        const event = classifyTableEvent(line);
        if (event.kind === 'foreign') this.queueLoss('table', `nft monitor: ${event.what}`);
        else if (event.kind === 'lost') this.suspect('nft monitor lost events');
      },
      (detail) => {
        this.options.logger?.warn({ detail }, 'nft monitor ended; restarting it');
        if (this.stopped || this.repairing) return;
        setTimeout(() => {
          if (this.stopped || this.repairing) return;
          this.startTableWatch();
          this.suspect('nft monitor restarted');
        }, 500).unref();
      },
      this.pidFile('nft'),
    );
  }

  private restartRuleWatch(detail: string): void {
    this.options.logger?.warn({ detail }, 'ip monitor ended; restarting it');
    setTimeout(() => {
      if (this.stopped) return;
      this.ruleWatch = this.startWatch(
        ['ip', 'monitor', 'rule'],
        () => this.suspect('ip rules changed'),
        (next) => this.restartRuleWatch(next),
        this.pidFile('ip'),
      );
      this.suspect('ip monitor restarted');
    }, 500).unref();
  }

  private queueLoss(what: string, detail: string): void {
    void this.queue.run(async () => {
      if (!this.stopped && !this.repairing) this.lost(what, detail);
    });
  }

  /**
   * Record a loss of the table and start the repair (at most one at a time,
   * and not sooner than `retryMs` after the last one: a table that keeps
   * vanishing is rebuilt at that pace, not in a loop).
   */
  private lost(what: string, detail: string): void {
    this.loss(what, detail);
    this.options.onTableLost?.();
    this.repairing = true;
    const wait = this.lastRepair + (this.options.retryMs ?? 1000) - Date.now();
    if (wait <= 0) void this.repair();
    else {
      this.retry = setTimeout(() => void this.repair(), wait);
      this.retry.unref();
    }
  }

  private loss(what: string, detail: string): void {
    this.problems.set(
      what,
      what === 'table'
        ? `table inet ticrypt is not as the backend left it (${detail}): rebuilding it from the store; nothing forwards meanwhile`
        : detail,
    );
    this.options.metrics?.losses.inc({ what });
    this.options.metrics?.healthy.set(0);
    this.options.audit({ event: 'guard', outcome: 'lost', what, detail });
    this.options.logger?.error({ what, detail }, 'fail-closed guard: loss detected');
  }

  private recovered(what: string, detail: string): void {
    this.problems.delete(what);
    this.options.metrics?.recoveries.inc();
    if (this.problems.size === 0) this.options.metrics?.healthy.set(1);
    this.options.audit({ event: 'guard', outcome: 'recovered', what, detail });
    this.options.logger?.info({ what, detail }, 'fail-closed guard: recovered');
  }

  /** Rebuild the table from the store with the table monitor paused; retry until it works. */
  private async repair(): Promise<void> {
    const started = Date.now();
    await this.tableWatch?.stop();
    this.tableWatch = undefined;
    try {
      await this.ensureRules(false);
      await this.options.rebuild();
      this.lastRepair = Date.now();
      if (this.stopped) return;
      this.repairing = false;
      this.startTableWatch();
      this.recovered('table', `table inet ticrypt rebuilt from the store in ${Date.now() - started} ms`);
      this.suspect('after repair');
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] ?? String(error);
      this.problems.set('table', `table inet ticrypt could not be rebuilt (retrying): ${message}`);
      this.options.audit({ event: 'guard', outcome: 'repair-failed', what: 'table', detail: message });
      this.options.logger?.error({ err: error }, 'rebuilding table inet ticrypt failed; retrying');
      if (this.stopped) return;
      this.retry = setTimeout(() => void this.repair(), this.options.retryMs ?? 1000);
      this.retry.unref();
    }
  }

  /** The expected chains `nft -j list chains` does not show (all of them when nft fails). */
  private async missingChains(): Promise<string[]> {
    const listed = await this.run('nft', ['-j', 'list', 'chains']);
    const present = new Set<string>();
    try {
      const json = JSON.parse(listed.stdout) as {
        nftables?: { chain?: { family?: string; table?: string; name?: string } }[];
      };
      for (const item of json.nftables ?? []) {
        if (item.chain?.family === 'inet' && item.chain.table === 'ticrypt' && item.chain.name !== undefined)
          present.add(item.chain.name);
      }
    } catch {
      // unreadable: everything counts as missing
    }
    return this.chains.filter((name) => !present.has(name));
  }

  /**
   * Add the fail-closed rules `ip rule` lacks; the ones added, described.
   * IPv6 rules that cannot be added (IPv6 disabled) are logged, not fatal.
   */
  private async ensureRules(strict: boolean): Promise<string[]> {
    const added: string[] = [];
    for (const family of [4, 6] as const) {
      const wanted = this.rules.filter((r) => r.family === family);
      const listed = await this.run('ip', [`-${family}`, '-j', 'rule', 'show']);
      if (listed.exitCode !== 0 && family === 6) continue;
      for (const rule of missingRules(wanted, listed.stdout)) {
        const result = await this.run('ip', ruleArgs(rule));
        if (result.exitCode === 0) {
          added.push(describeRule(rule));
        } else if (/File exists/.test(result.stderr)) {
          continue; // added meanwhile (by a concurrent repair)
        } else if (family === 4 && strict) {
          throw new Error(`Cannot add the fail-closed rule ip ${ruleArgs(rule).join(' ')}: ${result.stderr.trim()}`);
        } else {
          this.options.logger?.warn({ rule: describeRule(rule), stderr: result.stderr.trim() }, 'cannot add ip rule');
        }
      }
    }
    return added;
  }

  /**
   * Re-assert {@link serviceAssertedSettings} where the kernel would act otherwise (the larger of
   * `conf/all` and the interface's own, see `effectiveSetting`); an interface not there yet waits.
   */
  private async ensureSysctls(): Promise<void> {
    const read = async (path: string) => {
      const text = (await this.sysctl.read(path).catch(() => '')).trim();
      return /^[0-9]+$/.test(text) ? Number(text) : undefined;
    };
    for (const setting of serviceAssertedSettings(this.options.site)) {
      const iface = nftCheck.interfaceName('iface', setting.iface);
      const path = sysctlPath(interfaceKey(iface, setting.key));
      const own = await read(path);
      if (own === undefined) continue; // no such interface (yet): the next check sets it
      const all = await read(sysctlPath(interfaceKey('all', setting.key)));
      if (settingHolds(setting.key, effectiveSetting(setting.key, all ?? 0, own))) continue;
      await this.sysctl.write(path, String(setting.value));
      this.options.logger?.info({ sysctl: path, value: setting.value }, 'set a gateway interface setting');
    }
  }
}
