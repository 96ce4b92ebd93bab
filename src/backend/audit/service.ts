/**
 * The flow audit of a running backend: sets the conntrack sysctls events
 * need, writes ulogd's configuration, keeps ulogd running (or, under
 * systemd, checks it), follows its two outputs, turns lines into records
 * with each VM's identity, hands them to the sink, and counts every loss.
 * For: the backend's composition root. May not: decide what is audited
 * (the site and the table do).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import type { AllowEntry, Registration } from '../../protocol/api.js';
import type { Site } from '../../site/model.js';
import type { DnsAdmission } from '../dns/attribution.js';
import type { Store } from '../store/store.js';
import { auditedNetworks } from '../nft/audit.js';
import { flowRecord, isoMicros, refusedRecord, type IdentitySource } from './convert.js';
import { AuditMetrics } from './metrics.js';
import {
  dropsFromRecord,
  dropsToRecord,
  loadLedger,
  LOSS_KINDS,
  saveLedger,
  type LossKind,
  type LossLedger,
} from './loss-ledger.js';
import { CONNTRACK_FAILURES, readConntrackStat } from './conntrack-stat.js';
import { DropTracker, netlinkDrops } from './netlink-drops.js';
import type { AuditRecord, AuditSink, SuppressedRecord } from './record.js';
import { readTableCounters, SuppressedCounts } from './refusal-counts.js';
import { JsonlTail } from './ulogd-tail.js';
import { renderUlogdConfig } from './ulogd-config.js';
import { ensureUlogd, runningUlogd } from './ulogd-process.js';
import { signalPid } from '../dnsmasq/process.js';

/** The conntrack settings end events need (LAB.md): bytes, µs times, and events for flows opened while no listener ran. */
export const AUDIT_SYSCTLS = {
  'net/netfilter/nf_conntrack_acct': 1,
  'net/netfilter/nf_conntrack_timestamp': 1,
  'net/netfilter/nf_conntrack_events': 1,
} as const;

/** How the audit runs. */
export interface AuditServiceOptions {
  readonly site: Site;
  readonly store: Store;
  /** ulogd's config, outputs and pid file, and the readers' offsets, live here. */
  readonly dir: string;
  readonly sink: AuditSink;
  readonly metrics: PromRegistry;
  readonly logger: Logger;
  /** The NFLOG group of the table's refusal rules (default 2). */
  readonly nflogGroup?: number;
  /** `managed` (default): the service starts ulogd and starts it again when gone; `external`: systemd runs it. */
  readonly ulogd?: 'managed' | 'external';
  /** How often losses, suppressed counts and the logger are checked, ms (default 1000). */
  readonly pollMs?: number;
  /** The ulogd program (default /usr/sbin/ulogd). */
  readonly program?: string;
  /** Which DNS answers admitted an address for a NIC (the DNS front's `DnsAttribution`); absent: unattributed. */
  readonly dnsAdmissions?: (nicId: number, address: string, atMs: number) => readonly DnsAdmission[];
  /**
   * Both of ulogd's netlink socket buffers, bytes (default: 64 MiB conntrack events, 8 MiB NFLOG). For tests
   * that drive the audit past capacity (`backend serve --audit-netlink-buffer`); ulogd reads it when it starts.
   */
  readonly netlinkBuffer?: number;
  /**
   * Rotate each of ulogd's output files once this many of its bytes are read and stored (default
   * {@link DEFAULT_ROTATE_BYTES}): renamed, ulogd told to reopen (SIGHUP), the old one read to its end and removed.
   */
  readonly rotateBytes?: number;
}

/** ulogd's output files are rotated past this size unless told otherwise: 64 MiB. */
export const DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024;

/** The files of an audit directory. */
export function auditFiles(dir: string) {
  return {
    conf: join(dir, 'ulogd.conf'),
    pid: join(dir, 'ulogd.pid'),
    log: join(dir, 'ulogd.log'),
    flows: join(dir, 'flows.ulogd.json'),
    refused: join(dir, 'refused.ulogd.json'),
    flowsOffset: join(dir, 'flows.offset'),
    refusedOffset: join(dir, 'refused.offset'),
    ledger: join(dir, 'losses.json'),
  };
}

/** Identity from the store, NIC ids cached (and kept after a deregistration, for flows that end later). */
class StoreIdentity implements IdentitySource {
  private byId = new Map<number, Registration>();
  private refreshedAt = 0;
  private readonly audit: Set<string>;
  private readonly batchEntries = new Map<string, readonly AllowEntry[]>();

  constructor(
    private readonly store: Store,
    site: Site,
    private readonly admissions?: AuditServiceOptions['dnsAdmissions'],
  ) {
    this.audit = new Set(auditedNetworks(site).map((n) => n.name));
  }

  dnsAdmissions(nicId: number, address: string, atMs: number): readonly DnsAdmission[] {
    return this.admissions?.(nicId, address, atMs) ?? [];
  }

  byNicId(id: number): Registration | undefined {
    const hit = this.byId.get(id);
    if (hit !== undefined || Date.now() - this.refreshedAt < 1000) return hit;
    this.refreshedAt = Date.now();
    for (const r of this.store.registrations.list()) this.byId.set(r.nicId, r);
    return this.byId.get(id);
  }

  byMac(network: string, mac: string): Registration | undefined {
    return this.store.registrations.get(network, mac);
  }

  entries(vmUuid: string): readonly AllowEntry[] {
    let entries = this.batchEntries.get(vmUuid);
    if (entries === undefined) {
      entries = this.store.allowLists.get(vmUuid);
      this.batchEntries.set(vmUuid, entries);
    }
    return entries;
  }

  /**
   * A batch is converted in one synchronous loop, during which no request can
   * change an allow-list: each VM's list is read from the store once per batch
   * (the same answer as once per record, without a query and a parse each).
   */
  beginBatch(): void {
    this.batchEntries.clear();
  }

  audited(network: string): boolean {
    return this.audit.has(network);
  }
}

/** The running audit. */
export class AuditService {
  readonly metrics: AuditMetrics;
  private readonly files: ReturnType<typeof auditFiles>;
  private readonly identity: StoreIdentity;
  private readonly flows: JsonlTail;
  private readonly refused: JsonlTail;
  private drops = new DropTracker();
  private overruns = new DropTracker();
  /** What the ledger file holds (loaded at start, saved when a poll changed it and at close). */
  private ledger: LossLedger | undefined;
  private ledgerDirty = false;
  private readonly suppressed: SuppressedCounts;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private lastSeq: number | undefined;
  private lastPoll = Date.now();
  private firstPoll = true;
  /** When the refusal counters may be read again (see {@link AuditService.countSuppressed}). */
  private nextCountsRead = 0;
  private pid: number | undefined;
  /** An outage was counted and no logger was seen since. */
  private loggerDown = false;
  /** When a logger sighting was last marked for saving. */
  private sightingSavedAt = 0;

  constructor(private readonly options: AuditServiceOptions) {
    this.metrics = new AuditMetrics(options.metrics);
    this.files = auditFiles(options.dir);
    this.identity = new StoreIdentity(options.store, options.site, options.dnsAdmissions);
    this.suppressed = new SuppressedCounts(options.site);
    const malformed = () => this.lose('malformed', 1);
    const rotateBytes = options.rotateBytes ?? DEFAULT_ROTATE_BYTES;
    // ulogd's JSON output reopens its file on SIGHUP (2.0.8, seen in the lab).
    const reopen = (stream: 'flows' | 'refused') => () => {
      this.metrics.rotations.inc({ stream });
      // Gone meanwhile: the ulogd started next opens a new file anyway.
      if (this.pid !== undefined) signalPid(this.pid, 'SIGHUP');
    };
    this.flows = new JsonlTail({
      file: this.files.flows,
      stateFile: this.files.flowsOffset,
      onMalformed: malformed,
      onBatch: (lines) => this.takeFlows(lines),
      rotateBytes,
      onRotate: reopen('flows'),
    });
    this.refused = new JsonlTail({
      file: this.files.refused,
      stateFile: this.files.refusedOffset,
      onMalformed: malformed,
      onBatch: (lines) => this.takeRefused(lines),
      rotateBytes,
      onRotate: reopen('refused'),
    });
  }

  /** The NFLOG group the table's refusal rules must use. */
  get nflogGroup(): number {
    return this.options.nflogGroup ?? 2;
  }

  /** Set the sysctls, write the config, start (or find) ulogd, follow its outputs. */
  async start(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    for (const [key, value] of Object.entries(AUDIT_SYSCTLS)) {
      await writeFile(`/proc/sys/${key}`, `${value}\n`);
    }
    await writeFile(
      this.files.conf,
      renderUlogdConfig({
        flowFile: this.files.flows,
        refusedFile: this.files.refused,
        logFile: this.files.log,
        nflogGroup: this.nflogGroup,
        ...(this.options.netlinkBuffer === undefined
          ? {}
          : { netlinkBuffer: this.options.netlinkBuffer, nflogBuffer: this.options.netlinkBuffer }),
      }),
    );
    await this.loadLedger();
    await this.checkLogger();
    await this.saveLedger();
    await this.flows.start();
    await this.refused.start();
    this.timer = setInterval(() => {
      this.polling = this.polling.then(() =>
        this.poll().catch((error: unknown) => this.options.logger.error({ err: error }, 'audit poll failed')),
      );
    }, this.options.pollMs ?? 1000);
    this.timer.unref();
  }

  /** Stop following (offsets persisted); ulogd keeps running, writing what the next start reads. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.polling;
    await this.flows.stop();
    await this.refused.stop();
    await this.saveLedger();
  }

  /** ulogd's pid while it runs. */
  get loggerPid(): number | undefined {
    return this.pid;
  }

  /** One round of checks: the logger, netlink drops, suppressed refusals, reader lag. */
  async poll(): Promise<void> {
    await this.checkLogger();
    if (this.pid !== undefined) {
      const drops = await netlinkDrops(this.pid);
      // Each dropped message is a batch of refusals; their number shows as the NFLOG sequence's gap.
      const dropped = this.drops.delta(drops.log);
      if (dropped > 0) {
        this.metrics.nflogDrops.inc(dropped);
        this.options.logger.error({ dropped }, 'audit: the kernel dropped refusal batches on the logger socket');
      }
      const overruns = this.overruns.delta(drops.events);
      if (overruns > 0) this.metrics.overruns.inc(overruns);
      if (this.ledger !== undefined) {
        this.ledger.overruns += overruns;
        this.ledger.sockets = { events: dropsToRecord(this.overruns.seen), log: dropsToRecord(this.drops.seen) };
        this.ledgerDirty ||= dropped > 0 || overruns > 0;
      }
    }
    if (Date.now() >= this.nextCountsRead) await this.countSuppressed();
    const failures = await readConntrackStat();
    for (const how of CONNTRACK_FAILURES) if (failures) this.metrics.conntrackFailures.set({ how }, failures[how]);
    this.metrics.lag.set({ stream: 'flows' }, this.flows.lagBytes);
    this.metrics.lag.set({ stream: 'refused' }, this.refused.lagBytes);
    if (this.ledgerDirty) await this.saveLedger();
  }

  /**
   * The refusals the rate limit suppressed since the last read, as records and on /metrics. Reading the
   * table's counters makes nft 1.0.6 fetch every set element first (seconds at 10,000 VMs, see
   * src/backend/nft/DESIGN-NOTES.md), so the next read waits 9 times as long as this one took: at most a
   * tenth of the time in nft. The counts stay exact; only their intervals grow.
   */
  private async countSuppressed(): Promise<void> {
    const now = Date.now();
    const counts = this.suppressed.next(await readTableCounters(), this.firstPoll);
    const took = Date.now() - now;
    this.nextCountsRead = Date.now() + 9 * took;
    this.firstPoll = false;
    const records: SuppressedRecord[] = counts.map((c) => ({
      v: 1,
      kind: 'suppressed',
      vm: { uuid: null, name: null, mac: null, ip: null, network: c.network, host: null },
      start: isoMicros(Math.floor(this.lastPoll / 1000), (this.lastPoll % 1000) * 1000),
      end: isoMicros(Math.floor(now / 1000), (now % 1000) * 1000),
      reason: c.reason,
      count: c.count,
    }));
    this.lastPoll = now;
    for (const c of counts) this.metrics.suppressed.inc({ network: c.network, reason: c.reason }, c.count);
    await this.hand(records);
  }

  /** Count `n` records lost `how`, on /metrics and in the ledger. */
  private lose(how: LossKind, n: number): void {
    this.metrics.lost.inc({ how }, n);
    if (this.ledger !== undefined) {
      this.ledger.lost[how] += n;
      this.ledgerDirty = true;
    }
  }

  /** Start the counters from the ledger a previous run of the service left. */
  private async loadLedger(): Promise<void> {
    const ledger = await loadLedger(this.files.ledger);
    for (const how of LOSS_KINDS) this.metrics.lost.inc({ how }, ledger.lost[how]);
    this.metrics.overruns.inc(ledger.overruns);
    this.metrics.loggerDownSeconds.inc(ledger.loggerDownSeconds);
    this.drops = new DropTracker(dropsFromRecord(ledger.sockets.log));
    this.overruns = new DropTracker(dropsFromRecord(ledger.sockets.events));
    this.ledger = ledger;
  }

  private async saveLedger(): Promise<void> {
    if (this.ledger === undefined) return;
    this.ledgerDirty = false;
    await saveLedger(this.files.ledger, this.ledger).catch((error: unknown) =>
      this.options.logger.error({ err: error, file: this.files.ledger }, 'audit: cannot save the loss ledger'),
    );
  }

  /**
   * Find ulogd (managed: start it when gone) and account for outages: a logger found gone (or replaced by
   * another pid) after the service, or a previous run of it, saw one running is one outage
   * (`lost{how="logger-down"}`: the kernel drops the end event of a flow that ends while no socket listens,
   * ctnetlink reports it delivered), lasting from that sighting to the poll that sees a logger again.
   */
  private async checkLogger(): Promise<void> {
    let pid: number | undefined;
    if (this.options.ulogd === 'external') {
      pid = await runningUlogd(this.files.pid);
    } else {
      const found = await ensureUlogd({
        confFile: this.files.conf,
        pidFile: this.files.pid,
        ...(this.options.program === undefined ? {} : { program: this.options.program }),
      });
      if (found.started) {
        this.metrics.loggerStarts.inc();
        this.lastSeq = undefined;
      }
      pid = found.pid;
    }
    const now = Date.now();
    const seen = this.ledger?.loggerSeen;
    if (seen !== undefined && pid !== seen.pid && !this.loggerDown) {
      // Gone since the last sighting (found dead, or already replaced by a new one).
      this.loggerDown = true;
      this.lose('logger-down', 1);
      this.options.logger.error(
        { pid: seen.pid, seen: new Date(seen.at).toISOString() },
        'audit: the logger is gone; flows that end before it is back have no record',
      );
    }
    if (pid !== undefined) {
      if (this.loggerDown && seen !== undefined) {
        const seconds = Math.max(0, now - seen.at) / 1000;
        this.metrics.loggerDownSeconds.inc(seconds);
        if (this.ledger !== undefined) this.ledger.loggerDownSeconds += seconds;
        this.options.logger.warn({ pid, seconds }, 'audit: a logger runs again');
      }
      this.loggerDown = false;
      if (this.ledger !== undefined) {
        // Saved when the logger changed, else every 10 s (and at close): a crash overstates the next outage by that much at most.
        const saved = this.ledger.loggerSeen;
        if (saved?.pid !== pid || now - this.sightingSavedAt >= 10_000) {
          this.ledgerDirty = true;
          this.sightingSavedAt = now;
        }
        this.ledger.loggerSeen = { at: now, pid };
      }
    }
    this.pid = pid;
    this.metrics.loggerUp.set(pid === undefined ? 0 : 1);
  }

  private async hand(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.options.sink.append(records);
    const kinds = new Map<AuditRecord['kind'], number>();
    for (const r of records) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
    for (const [kind, count] of kinds) this.metrics.records.inc({ kind }, count);
  }

  private async takeFlows(lines: Record<string, unknown>[]): Promise<void> {
    const records: AuditRecord[] = [];
    this.identity.beginBatch();
    for (const line of lines) {
      const converted = flowRecord(line, this.identity);
      if ('record' in converted) records.push(converted.record);
      else if (converted.skipped === 'malformed') this.lose('malformed', 1);
    }
    await this.hand(records);
  }

  private async takeRefused(lines: Record<string, unknown>[]): Promise<void> {
    const records: AuditRecord[] = [];
    for (const line of lines) {
      const seq = line['oob.seq.local'];
      if (typeof seq === 'number') {
        // ulogd numbers NFLOG messages from 0 at each start: a jump is a loss, a step back a new ulogd.
        if (this.lastSeq !== undefined && seq > this.lastSeq + 1) {
          this.lose('nflog-gap', seq - this.lastSeq - 1);
        }
        this.lastSeq = seq;
      }
      const converted = refusedRecord(line, this.identity);
      if ('record' in converted) records.push(converted.record);
      else if (converted.skipped === 'malformed') this.lose('malformed', 1);
    }
    await this.hand(records);
  }
}
