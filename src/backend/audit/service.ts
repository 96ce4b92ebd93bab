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
import type { Store } from '../store/store.js';
import { auditedNetworks } from '../nft/audit.js';
import { flowRecord, isoMicros, refusedRecord, type IdentitySource } from './convert.js';
import { AuditMetrics } from './metrics.js';
import { DropTracker, netlinkDrops } from './netlink-drops.js';
import type { AuditRecord, AuditSink, SuppressedRecord } from './record.js';
import { readTableCounters, SuppressedCounts } from './refusal-counts.js';
import { JsonlTail } from './ulogd-tail.js';
import { renderUlogdConfig } from './ulogd-config.js';
import { ensureUlogd, runningUlogd } from './ulogd-process.js';

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
}

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
  };
}

/** Identity from the store, NIC ids cached (and kept after a deregistration, for flows that end later). */
class StoreIdentity implements IdentitySource {
  private byId = new Map<number, Registration>();
  private refreshedAt = 0;
  private readonly audit: Set<string>;

  constructor(
    private readonly store: Store,
    site: Site,
  ) {
    this.audit = new Set(auditedNetworks(site).map((n) => n.name));
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
    return this.store.allowLists.get(vmUuid);
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
  private readonly drops = new DropTracker();
  private readonly overruns = new DropTracker();
  private readonly suppressed: SuppressedCounts;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private lastSeq: number | undefined;
  private lastPoll = Date.now();
  private firstPoll = true;
  private pid: number | undefined;

  constructor(private readonly options: AuditServiceOptions) {
    this.metrics = new AuditMetrics(options.metrics);
    this.files = auditFiles(options.dir);
    this.identity = new StoreIdentity(options.store, options.site);
    this.suppressed = new SuppressedCounts(options.site);
    const malformed = () => this.metrics.lost.inc({ how: 'malformed' });
    this.flows = new JsonlTail({
      file: this.files.flows,
      stateFile: this.files.flowsOffset,
      onMalformed: malformed,
      onBatch: (lines) => this.takeFlows(lines),
    });
    this.refused = new JsonlTail({
      file: this.files.refused,
      stateFile: this.files.refusedOffset,
      onMalformed: malformed,
      onBatch: (lines) => this.takeRefused(lines),
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
      }),
    );
    await this.checkLogger();
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
      const lost = this.drops.delta(drops.log);
      if (lost > 0) {
        this.metrics.lost.inc({ how: 'netlink' }, lost);
        this.options.logger.error({ lost }, 'audit: the kernel dropped refusals on the logger socket');
      }
      const overruns = this.overruns.delta(drops.events);
      if (overruns > 0) this.metrics.overruns.inc(overruns);
    }
    const now = Date.now();
    const counts = this.suppressed.next(await readTableCounters(), this.firstPoll);
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
    this.metrics.lag.set({ stream: 'flows' }, this.flows.lagBytes);
    this.metrics.lag.set({ stream: 'refused' }, this.refused.lagBytes);
  }

  private async checkLogger(): Promise<void> {
    if (this.options.ulogd === 'external') {
      this.pid = await runningUlogd(this.files.pid);
    } else {
      const { pid, started } = await ensureUlogd({
        confFile: this.files.conf,
        pidFile: this.files.pid,
        ...(this.options.program === undefined ? {} : { program: this.options.program }),
      });
      if (started) {
        this.metrics.loggerStarts.inc();
        // Found gone after having run: what it would have logged meanwhile may be lost (refusals are).
        if (this.pid !== undefined) this.metrics.lost.inc({ how: 'logger-down' });
        this.lastSeq = undefined;
      }
      this.pid = pid;
    }
    if (this.pid === undefined) this.metrics.lost.inc({ how: 'logger-down' });
    this.metrics.loggerUp.set(this.pid === undefined ? 0 : 1);
  }

  private async hand(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.options.sink.append(records);
    for (const r of records) this.metrics.records.inc({ kind: r.kind });
  }

  private async takeFlows(lines: Record<string, unknown>[]): Promise<void> {
    const records: AuditRecord[] = [];
    for (const line of lines) {
      const converted = flowRecord(line, this.identity);
      if ('record' in converted) records.push(converted.record);
      else if (converted.skipped === 'malformed') this.metrics.lost.inc({ how: 'malformed' });
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
          this.metrics.lost.inc({ how: 'nflog-gap' }, seq - this.lastSeq - 1);
        }
        this.lastSeq = seq;
      }
      const converted = refusedRecord(line, this.identity);
      if ('record' in converted) records.push(converted.record);
      else if (converted.skipped === 'malformed') this.metrics.lost.inc({ how: 'malformed' });
    }
    await this.hand(records);
  }
}
