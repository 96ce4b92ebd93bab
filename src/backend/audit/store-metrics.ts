/**
 * The audit store's Prometheus metrics, registered on the backend's registry
 * (served at `GET /metrics`), read from the store's plain counters at each
 * scrape. `ticrypt_audit_chain_seq` is the head a scraper keeps off the
 * machine: `audit verify --head SEQ` later proves no line up to it was cut.
 */
import type { Registry } from 'prom-client';
import { scrapedCounter, scrapedGauge } from '../api/scraped.js';
import type { AuditStore, AuditStoreStats } from './day-store.js';

/**
 * Register the store's metrics on `registry`.
 *
 * @example
 * registerAuditStoreMetrics(registry, store);
 */
export function registerAuditStoreMetrics(registry: Registry, store: AuditStore): void {
  const count = (name: string, help: string, key: keyof AuditStoreStats) =>
    scrapedCounter(registry, name, help, () => store.stats[key]);
  count('ticrypt_audit_records_stored_total', 'Audit records appended and durable', 'records');
  count('ticrypt_audit_store_batches_total', 'Batches written to the audit day files (one write each)', 'batches');
  count('ticrypt_audit_store_bytes_total', 'Bytes written to the audit day files', 'bytes');
  count('ticrypt_audit_store_fsyncs_total', 'fdatasync calls on the audit day files', 'fsyncs');
  count(
    'ticrypt_audit_store_files_removed_total',
    'Whole audit files removed by retention (each on record)',
    'filesRemoved',
  );
  count(
    'ticrypt_audit_store_torn_tails_total',
    'Torn tails found in audit files (after a crash), recorded in the chain',
    'tornTails',
  );
  count(
    'ticrypt_audit_store_failures_total',
    'Audit appends that failed (write, fsync, file creation): their records were not stored',
    'failures',
  );
  scrapedGauge(
    registry,
    'ticrypt_audit_chain_seq',
    'The seq of the last line of the audit hash chain (keep it: audit verify --head SEQ)',
    () => store.head.seq,
  );
}
