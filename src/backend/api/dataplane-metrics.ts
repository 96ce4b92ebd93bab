/**
 * The data plane on `/metrics`: what `table inet ticrypt` accepted and dropped
 * per network (the named counters of its counters table, `inet ticrypt_counters`), the flows it accepted, the conntrack
 * table's fill, and the store's counts (VMs per network, NICs and VMs per
 * host, SSH forwards held). One snapshot serves every metric of a scrape and
 * is kept `cacheMs`, then refreshed in the background: a scrape starts at most
 * one `nft -j list table inet ticrypt_counters` (a child process, the event loop is free
 * meanwhile), two small /proc reads and three grouped store queries, never a
 * command per VM, and waits for none of them but the first. A source that fails
 * keeps its last values and counts the failure.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Site } from '../../site/model.js';
import type { ConntrackFill } from '../conntrack-fill.js';
import type { CounterValue } from '../nft/counters.js';
import { DROP_REASONS, networkCounters, trafficCounters, type DropReason } from '../nft/names.js';
import type { Census } from '../store/census.js';

/** Where a snapshot's parts come from (the daemon gives the real ones, tests their own). */
export interface DataPlaneSources {
  /** Every named counter of the counters table, by name (one nft run). */
  readonly counters: () => Promise<ReadonlyMap<string, CounterValue>>;
  /** The conntrack table's fill. */
  readonly conntrack: () => Promise<ConntrackFill>;
  /** The store's counts. */
  readonly census: () => Census;
}

/** One reading of every source. */
interface Snapshot {
  counters: ReadonlyMap<string, CounterValue>;
  conntrack: ConntrackFill | undefined;
  census: Census;
  seconds: number;
  /** When it was taken (ms, the clock of `now`). */
  at: number;
}

/** A network's counter name for each drop reason, with the source chains' two. */
type Reason = DropReason | 'spoofed' | 'unregistered';

/** A reading that took t is followed by the next no sooner than this many t later (bounds nft's CPU share). */
export const READ_DUTY_FACTOR = 10;

/** Default snapshot lifetime: scrapes closer together than this share one reading. */
export const DATAPLANE_CACHE_MS = 10_000;

/** The data-plane metrics, registered on the backend's registry. */
export class DataPlaneMetrics {
  private snapshot: Snapshot | undefined;
  private takenAt = -Infinity;
  private pending: Promise<Snapshot> | undefined;
  private readonly errors: Counter<'source'>;
  private readonly cacheMs: number;
  private readonly now: () => number;

  constructor(
    registry: Registry,
    private readonly site: Site,
    private readonly sources: DataPlaneSources,
    options: { readonly cacheMs?: number; readonly now?: () => number } = {},
  ) {
    this.cacheMs = options.cacheMs ?? DATAPLANE_CACHE_MS;
    this.now = options.now ?? Date.now;
    this.errors = new Counter({
      name: 'ticrypt_dataplane_read_errors_total',
      help: 'Failed reads of a data-plane source (nft counters, conntrack); its metrics keep their last values',
      labelNames: ['source'],
      registers: [registry],
      // Read first, so a failure of this scrape's reading is in this scrape.
      collect: async () => {
        await this.read();
      },
    });
    const read = () => this.read();
    const networks = site.networks;
    const perNetwork = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (snapshot: Snapshot, set: (labels: Record<L, string>, value: number) => void) => void,
      kind: 'counter' | 'gauge',
    ) => {
      const Kind = kind === 'counter' ? Counter : Gauge;
      new Kind({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          const snapshot = await read();
          this.reset();
          fill(snapshot, (labels, value) => {
            if (this instanceof Counter) this.inc(labels, value);
            else (this as Gauge<L>).set(labels, value);
          });
        },
      } as ConstructorParameters<typeof Counter<L>>[0]);
    };
    const value = (s: Snapshot, counter: string) => s.counters.get(counter);
    const directions = (n: Site['networks'][number]) => {
      const c = trafficCounters(n.name);
      return { from_vms: c.acceptedFrom, to_vms: c.acceptedTo, to_gateway: c.acceptedLocal } as const;
    };
    const reasons = (n: Site['networks'][number]): [Reason, string][] => [
      ['spoofed', networkCounters(n.name).spoofed],
      ['unregistered', networkCounters(n.name).unregistered],
      ...Object.keys(DROP_REASONS).map(
        (reason) => [reason as DropReason, trafficCounters(n.name).dropped[reason as DropReason]] as [Reason, string],
      ),
    ];
    for (const unit of ['packets', 'bytes'] as const) {
      perNetwork(
        `ticrypt_accepted_${unit}_total`,
        `${unit === 'packets' ? 'Packets' : 'Bytes'} table inet ticrypt accepted, by network and direction (from_vms, to_vms: forwarded; to_gateway: DHCP, DNS, ICMP to the backend)`,
        ['network', 'direction'],
        (s, set) => {
          for (const n of networks) {
            for (const [direction, counter] of Object.entries(directions(n))) {
              const v = value(s, counter);
              if (v) set({ network: n.name, direction }, v[unit]);
            }
          }
        },
        'counter',
      );
      perNetwork(
        `ticrypt_dropped_${unit}_total`,
        `${unit === 'packets' ? 'Packets' : 'Bytes'} table inet ticrypt dropped, by network and reason (spoofed, unregistered, egress, dns, cross, inbound, input, unowned_flow, ssh_source)`,
        ['network', 'reason'],
        (s, set) => {
          for (const n of networks) {
            for (const [reason, counter] of reasons(n)) {
              const v = value(s, counter);
              if (v) set({ network: n.name, reason }, v[unit]);
            }
          }
        },
        'counter',
      );
      perNetwork(
        `ticrypt_table_counter_${unit}_total`,
        `Every named counter of table inet ticrypt_counters as it is (${unit}), by counter name`,
        ['counter'],
        (s, set) => {
          for (const [counter, v] of s.counters) set({ counter }, v[unit]);
        },
        'counter',
      );
    }
    perNetwork(
      'ticrypt_flows_total',
      'Flows table inet ticrypt accepted (their first packet), by network and direction (from_vms, to_vms)',
      ['network', 'direction'],
      (s, set) => {
        for (const n of networks) {
          const c = trafficCounters(n.name);
          for (const [direction, counter] of [
            ['from_vms', c.flowsFrom],
            ['to_vms', c.flowsTo],
          ] as const) {
            const v = value(s, counter);
            if (v) set({ network: n.name, direction }, v.packets);
          }
        }
      },
      'counter',
    );
    const conntrack = (name: string, help: string, pick: (fill: ConntrackFill) => number) =>
      perNetwork(
        name,
        help,
        [],
        (s, set) => {
          if (s.conntrack) set({}, pick(s.conntrack));
        },
        'gauge',
      );
    conntrack(
      'ticrypt_conntrack_entries',
      "Entries in the backend's conntrack table (nf_conntrack_count)",
      (f) => f.count,
    );
    conntrack('ticrypt_conntrack_max', "The backend's conntrack table size (nf_conntrack_max)", (f) => f.max);
    conntrack('ticrypt_conntrack_fill_ratio', 'nf_conntrack_count / nf_conntrack_max', (f) =>
      f.max > 0 ? f.count / f.max : 0,
    );
    perNetwork(
      'ticrypt_registered_vms',
      'VMs with a registered NIC, by network',
      ['network'],
      (s, set) => {
        for (const n of networks) set({ network: n.name }, s.census.vmsByNetwork.get(n.name) ?? 0);
      },
      'gauge',
    );
    perNetwork(
      'ticrypt_host_registrations',
      'Registered VM NICs, by the host that registered them',
      ['host'],
      (s, set) => {
        for (const [host, counts] of s.census.byHost) set({ host }, counts.nics);
      },
      'gauge',
    );
    perNetwork(
      'ticrypt_host_registered_vms',
      'VMs with a registered NIC, by the host that registered them',
      ['host'],
      (s, set) => {
        for (const [host, counts] of s.census.byHost) set({ host }, counts.vms);
      },
      'gauge',
    );
    perNetwork(
      'ticrypt_ssh_forwards',
      'SSH forwards held by registered NICs (a backend port each), by network',
      ['network'],
      (s, set) => {
        for (const n of networks) {
          if (n.ssh !== undefined) set({ network: n.name }, s.census.sshForwardsByNetwork.get(n.name) ?? 0);
        }
      },
      'gauge',
    );
    const now = this.now;
    perNetwork(
      'ticrypt_dataplane_age_seconds',
      'Age of the data-plane snapshot this scrape shows (it is refreshed in the background once older than the cache time)',
      [],
      (s, set) => set({}, (now() - s.at) / 1000),
      'gauge',
    );
    perNetwork(
      'ticrypt_dataplane_read_seconds',
      'How long the last reading of the data-plane sources took',
      [],
      (s, set) => set({}, s.seconds),
      'gauge',
    );
  }

  /**
   * The snapshot a scrape serves. The first scrape waits for a reading; later
   * ones get the last snapshot at once and, when it is `cacheMs` old, start
   * one new reading in the background (never two at a time, and no sooner
   * than {@link READ_DUTY_FACTOR} times the last reading's duration), which the next
   * scrape serves: a scrape never waits for nft (~40 ms for the counters
   * table at any number of VMs; seconds when a listing made nft fetch the
   * main table's set elements).
   */
  read(): Promise<Snapshot> {
    // A reading that took t waits at least READ_DUTY_FACTOR x t for the next: nft runs at most ~10 % of the time.
    const wait = Math.max(this.cacheMs, READ_DUTY_FACTOR * (this.snapshot?.seconds ?? 0) * 1000);
    const stale = this.snapshot === undefined || this.now() - this.takenAt >= wait;
    if (stale && this.pending === undefined) {
      this.pending = this.take().finally(() => {
        this.pending = undefined;
      });
    }
    if (this.snapshot !== undefined) return Promise.resolve(this.snapshot);
    return this.pending ?? this.take();
  }

  private async take(): Promise<Snapshot> {
    const started = performance.now();
    const previous = this.snapshot;
    const [counters, conntrack] = await Promise.all([
      this.sources.counters().catch(() => {
        this.errors.inc({ source: 'nft' });
        return previous?.counters ?? new Map<string, CounterValue>();
      }),
      this.sources.conntrack().catch(() => {
        this.errors.inc({ source: 'conntrack' });
        return previous?.conntrack;
      }),
    ]);
    const census = this.sources.census();
    const snapshot = { counters, conntrack, census, seconds: (performance.now() - started) / 1000, at: this.now() };
    this.snapshot = snapshot;
    this.takenAt = snapshot.at;
    return snapshot;
  }
}
