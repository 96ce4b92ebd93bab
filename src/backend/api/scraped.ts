/**
 * Prometheus metrics whose value is read at each scrape from a plain count
 * that the code keeping it knows nothing of Prometheus about (the DNS
 * front's opener, the audit store): one shape for every such metric.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * A counter registered on `registry` that shows `read()` at each scrape.
 *
 * @example scrapedCounter(registry, 'ticrypt_dns_transactions_total', 'nft transactions run by the DNS front', () => opener.stats.transactions);
 */
export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/**
 * A gauge registered on `registry` that shows `read()` at each scrape.
 *
 * @example scrapedGauge(registry, 'ticrypt_dns_open_elements', 'DNS-opened elements open now', () => opener.size);
 */
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
