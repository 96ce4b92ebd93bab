/**
 * The flow audit's counters on the backend's `/metrics` registry: records
 * written by kind, and every way a record can be lost: NFLOG sequence gaps
 * (refusals the kernel dropped on ulogd's NFLOG socket, one by one; the
 * dropped netlink messages, batches of them, counted apart), conntrack
 * event overruns (resent, not lost), refusals the rate limit suppressed
 * (exact, from the table's counters), logger outages and their length, and
 * lines ulogd wrote that were not JSON. The loss counters start from the
 * service's loss ledger (loss-ledger.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** The audit metrics, registered on `registry`. */
export class AuditMetrics {
  readonly records: Counter<'kind'>;
  readonly lost: Counter<'how'>;
  readonly overruns: Counter;
  readonly nflogDrops: Counter;
  readonly suppressed: Counter<'network' | 'reason'>;
  readonly loggerUp: Gauge;
  readonly loggerStarts: Counter;
  readonly loggerDownSeconds: Counter;
  readonly lag: Gauge<'stream'>;
  readonly rotations: Counter<'stream'>;
  readonly conntrackFailures: Gauge<'how'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.records = new Counter({
      name: 'ticrypt_audit_records_total',
      help: 'Audit records handed to the sink, by kind (flow, refused, suppressed)',
      labelNames: ['kind'],
      registers,
    });
    this.lost = new Counter({
      name: 'ticrypt_audit_lost_total',
      help: 'Audit events lost, by how: nflog-gap (refusals missing from the NFLOG sequence: the ones the kernel dropped on the logger socket, each counted once a later refusal arrives), logger-down (logger outages: every audited flow that ended during one has no record; their length is ticrypt_audit_logger_down_seconds_total), malformed (lines not JSON); kept across service restarts',
      labelNames: ['how'],
      registers,
    });
    for (const how of ['nflog-gap', 'logger-down', 'malformed']) this.lost.inc({ how }, 0);
    this.nflogDrops = new Counter({
      name: 'ticrypt_audit_nflog_drops_total',
      help: 'Netlink messages the kernel dropped on the logger\'s NFLOG socket: each a batch of up to hundreds of refusals, which lost_total{how="nflog-gap"} counts one by one',
      registers,
    });
    this.overruns = new Counter({
      name: 'ticrypt_audit_netlink_overruns_total',
      help: "Conntrack end events the logger's socket could not take at once; the kernel keeps and resends them (reliable mode), so not lost, but a sign the logger falls behind; kept across service restarts",
      registers,
    });
    this.suppressed = new Counter({
      name: 'ticrypt_audit_suppressed_total',
      help: 'Refusals the rate limit kept from being records (each counted in a suppressed record), by network and reason',
      labelNames: ['network', 'reason'],
      registers,
    });
    this.loggerUp = new Gauge({ name: 'ticrypt_audit_logger_up', help: '1 while ulogd runs', registers });
    this.loggerStarts = new Counter({
      name: 'ticrypt_audit_logger_starts_total',
      help: 'Times the service started ulogd',
      registers,
    });
    this.loggerDownSeconds = new Counter({
      name: 'ticrypt_audit_logger_down_seconds_total',
      help: "Seconds no logger ran, from the service's last poll that saw it to the one that saw it again (at most a poll interval more than the outage); kept across service restarts",
      registers,
    });
    this.lag = new Gauge({
      name: 'ticrypt_audit_reader_lag_bytes',
      help: "Bytes of ulogd's output not yet read, by stream (flows, refused)",
      labelNames: ['stream'],
      registers,
    });
    this.rotations = new Counter({
      name: 'ticrypt_audit_rotations_total',
      help: 'Times the reader asked ulogd to reopen an output file it rotated (SIGHUP; asked again each second until it has), by stream',
      labelNames: ['stream'],
      registers,
    });
    this.conntrackFailures = new Gauge({
      name: 'ticrypt_audit_conntrack_failures',
      help: "The conntrack table's failures since the namespace began (/proc/net/stat/nf_conntrack), by how: drop (new flows dropped: the table full, e.g. of entries held for a logger that falls behind: fail closed), early_drop (old entries evicted), insert_failed",
      labelNames: ['how'],
      registers,
    });
  }
}
