import { Counter, Gauge, Histogram, Registry as PromRegistry } from 'prom-client';

/**
 * The backend's Prometheus metrics, on a registry of their own (nothing
 * global): registrations, API latency, firewall apply latency, errors.
 */
export class Metrics {
  readonly registry = new PromRegistry();
  readonly registrations = new Gauge({
    name: 'ticrypt_registrations',
    help: 'Registered VM NICs, by network',
    labelNames: ['network'],
    registers: [this.registry],
  });
  readonly requests = new Histogram({
    name: 'ticrypt_api_request_seconds',
    help: 'API request latency, by route and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly enforce = new Histogram({
    name: 'ticrypt_enforce_seconds',
    help: 'Time to apply one change to nftables and dnsmasq, by kind (change, rebuild; repair: the firewall alone)',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'ticrypt_errors_total',
    help: 'Refused or failed requests, by error code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly losses = new Counter({
    name: 'ticrypt_guard_losses_total',
    help: 'Times table inet ticrypt or the fail-closed ip rules were found missing or altered, by what',
    labelNames: ['what'],
    registers: [this.registry],
  });
  readonly recoveries = new Counter({
    name: 'ticrypt_guard_recoveries_total',
    help: 'Times the table and the fail-closed rules were restored from the store',
    registers: [this.registry],
  });
  readonly healthy = new Gauge({
    name: 'ticrypt_healthy',
    help: '1 while the table and the fail-closed rules are in place, 0 while they are being restored',
    registers: [this.registry],
  });
  readonly expired = new Counter({
    name: 'ticrypt_expired_registrations_total',
    help: 'Registrations removed because their host stopped reconciling',
    registers: [this.registry],
  });

  /** The exposition text for `GET /metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
