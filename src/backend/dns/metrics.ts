/**
 * The DNS front's Prometheus metrics, registered on the backend's registry
 * (served at `GET /metrics`).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { scrapedCounter, scrapedGauge } from '../api/scraped.js';
import type { Opener } from './opener.js';

/** Counters and timings of the DNS front. */
export class DnsMetrics {
  readonly queries: Counter<'network' | 'result'>;
  readonly seconds: Histogram<'cache'>;
  readonly withheld: Counter;

  constructor(registry: Registry, opener: Opener) {
    this.queries = new Counter({
      name: 'ticrypt_dns_queries_total',
      help: 'DNS queries from VMs by network and result (answered, nodata, nxdomain, blocked, cname_blocked, too_long, bad_name, refused_type, unknown_client, rate_limited, malformed, servfail)',
      labelNames: ['network', 'result'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'ticrypt_dns_answer_seconds',
      help: 'Time from query to answer for resolved names, by whether the upstream answer was cached (hit, miss)',
      labelNames: ['cache'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 3],
      registers: [registry],
    });
    this.withheld = new Counter({
      name: 'ticrypt_dns_withheld_addresses_total',
      help: 'Special-use addresses left out of answers (no entry names their range): opened nothing',
      registers: [registry],
    });
    // The opener keeps plain counts (it knows nothing of Prometheus); read at each scrape.
    const count = (name: string, help: string, read: () => number) => scrapedCounter(registry, name, help, read);
    count(
      'ticrypt_dns_opened_elements_total',
      'Firewall elements written by DNS answers (opened or refreshed)',
      () => opener.stats.opened,
    );
    count(
      'ticrypt_dns_skipped_elements_total',
      'Firewall elements DNS answers found open long enough (no write)',
      () => opener.stats.skipped,
    );
    count(
      'ticrypt_dns_closed_elements_total',
      'DNS-opened elements closed by allow-list changes and deregistrations',
      () => opener.stats.closed,
    );
    count('ticrypt_dns_transactions_total', 'nft transactions run by the DNS front', () => opener.stats.transactions);
    count(
      'ticrypt_dns_transaction_failures_total',
      'nft transactions of the DNS front that failed (their answers were SERVFAIL)',
      () => opener.stats.failures,
    );
    scrapedGauge(
      registry,
      'ticrypt_dns_open_elements',
      'DNS-opened elements open now, by the front ledger',
      () => opener.size,
    );
  }
}
