/** The backend role's doctor checks: pure functions of {@link BackendFacts}. */
import type { BackendPlanOptions } from '../../backend/setup/model.js';
import type { Site } from '../../site/model.js';
import { describeRule, failClosedRules, missingRules, ruleArgs } from '../../backend/guard/rules.js';
import type { BackendFacts } from './backend-facts.js';
import { backendSetupChecks } from './backend-plan-checks.js';
import { checkRoutes } from './host-checks.js';
import { fail, ok, warn, type CheckResult } from './result.js';
import { NFT_TABLE, NFT_TABLE_REF } from '../../names.js';
import { checkAudit } from '../../backend/audit/doctor-fact.js';

/** The dnsmasq default when a config sets no `dhcp-lease-max`. */
const DNSMASQ_DEFAULT_LEASE_MAX = 1000;

/**
 * Every backend check: what `backend apply` manages (gateway interfaces,
 * forwarding and the gateway sysctls, ARP included, the boot-time file, the
 * unit: built from its planner, `./backend-plan-checks.ts`), the ticrypt table
 * and its registered set against the store, dnsmasq per network and its lease
 * limit, forward chains of other tables that would drop what ticrypt accepts,
 * routes, the fail-closed rules, a flushing nftables.service.
 */
export function checkBackend(site: Site, facts: BackendFacts, options: BackendPlanOptions = {}): CheckResult[] {
  const results: CheckResult[] = [...backendSetupChecks(site, facts.setup, options)];
  results.push(
    facts.tablePresent
      ? ok('nft.table', NFT_TABLE_REF, 'present')
      : fail(
          'nft.table',
          NFT_TABLE_REF,
          'the table is missing: no VM network is filtered or forwarded',
          'start the backend service (ticrypt-net backend serve), which builds the table from the store',
        ),
  );
  results.push(checkRegistered(site, facts));
  if (facts.audit !== undefined) results.push(...checkAudit(facts.audit));
  for (const d of facts.dnsmasq) {
    const network = site.networks.find((n) => n.name === d.network);
    results.push(
      d.running
        ? ok('dnsmasq.running', d.network, `pid ${d.pid ?? '?'}`)
        : fail(
            'dnsmasq.running',
            d.network,
            d.pid === undefined ? `no pid in ${d.pidFile}` : `pid ${d.pid} from ${d.pidFile} is not a running dnsmasq`,
            'restart the backend service: it supervises one dnsmasq per network',
          ),
    );
    if (network === undefined) continue;
    if (!d.confFound) {
      results.push(
        fail(
          'dnsmasq.lease-max',
          d.network,
          `no config at ${d.confFile}`,
          'restart the backend service: it writes the config',
        ),
      );
      continue;
    }
    const max = d.leaseMax ?? DNSMASQ_DEFAULT_LEASE_MAX;
    results.push(
      max >= network.dhcp.size
        ? ok('dnsmasq.lease-max', d.network, `dhcp-lease-max ${max} covers the range (${network.dhcp.size} addresses)`)
        : fail(
            'dnsmasq.lease-max',
            d.network,
            `dhcp-lease-max ${max}${d.leaseMax === undefined ? ' (default)' : ''} is below the range's ${network.dhcp.size} addresses: leases beyond it are refused`,
            `set dhcp-lease-max=${network.dhcp.size} (the backend service renders it; rewrite ${d.confFile} from the site)`,
          ),
    );
  }
  const blocking = facts.chains.filter(
    (c) =>
      c.hook === 'forward' && c.policy === 'drop' && !(c.family === NFT_TABLE.family && c.table === NFT_TABLE.name),
  );
  results.push(
    blocking.length === 0
      ? ok('nft.foreign-forward', 'ruleset', "no other table's forward chain drops by policy")
      : fail(
          'nft.foreign-forward',
          blocking.map((c) => `${c.family} ${c.table} ${c.name}`).join(', '),
          "a forward base chain with policy drop in another table: an accept in inet ticrypt ends only ticrypt's chain, so this chain still drops VM traffic (Docker and firewalld install such chains)",
          "accept ticrypt's interfaces in that chain (e.g. for Docker: rules in DOCKER-USER), or stop the service that installs it on the backend",
        ),
  );
  const gatewayOf = new Map(site.networks.map((n) => [n.name, n.gatewayInterface]));
  results.push(...checkRoutes(site, facts.routes, (network, route) => route.dev !== gatewayOf.get(network)));
  results.push(checkFailClosedRules(site, facts), checkNftablesService(facts));
  return results;
}

/** The fail-closed ip rules the backend service installs: without them, a lost table forwards unfiltered. */
function checkFailClosedRules(site: Site, facts: BackendFacts): CheckResult {
  const id = 'guard.ip-rules';
  if (facts.ipRules === undefined)
    return fail(id, 'ip rule', 'ip -j rule show failed', 'install iproute2 and run doctor as root');
  const wanted = failClosedRules(site);
  const missing = [
    ...missingRules(
      wanted.filter((r) => r.family === 4),
      facts.ipRules.v4,
    ),
    ...(facts.ipRules.v6 === undefined
      ? []
      : missingRules(
          wanted.filter((r) => r.family === 6),
          facts.ipRules.v6,
        )),
  ];
  if (missing.length === 0)
    return ok(
      id,
      'ip rule',
      `${wanted.length} fail-closed rules in place (mark bit 0x${site.backend.failClosedMark.toString(16)})`,
    );
  return fail(
    id,
    'ip rule',
    `missing: ${missing.map(describeRule).join('; ')}: if table inet ticrypt is lost, VM networks forward unfiltered`,
    `restart the backend service (it installs them at start and keeps them), or: ${missing.map((r) => `ip ${ruleArgs(r).join(' ')}`).join('; ')}`,
  );
}

/** Debian's `nftables.service` loads a config that starts with `flush ruleset`: at boot and reload it deletes the table. */
function checkNftablesService(facts: BackendFacts): CheckResult {
  const id = 'nft.nftables-service';
  const service = facts.nftablesService;
  if (service === undefined) return ok(id, 'nftables.service', 'no systemd here');
  if (!service.enabled) return ok(id, 'nftables.service', 'not enabled');
  if (!service.flushesRuleset)
    return ok(id, 'nftables.service', `enabled; ${service.configFile} does not flush the ruleset`);
  return warn(
    id,
    'nftables.service',
    `enabled, and ${service.configFile} runs flush ruleset: every boot or reload deletes table inet ticrypt (nothing forwards until the backend rebuilds it, seconds later)`,
    `in ${service.configFile}, replace 'flush ruleset' with a delete of each table it defines (e.g. 'table inet filter' then 'delete table inet filter' before its definition), or disable nftables.service`,
  );
}

function checkRegistered(site: Site, facts: BackendFacts): CheckResult {
  const id = 'nft.registered';
  if (!facts.tablePresent || facts.registered === undefined)
    return warn(id, 'set registered', 'not compared: the table is missing', 'see nft.table');
  if (facts.store === undefined)
    return warn(
      id,
      'set registered',
      `${facts.registered.length} element(s); not compared with the store (no admin token given)`,
      'run doctor with --admin-token-file to compare',
    );
  if (!facts.store.ok)
    return fail(
      id,
      'set registered',
      `the store could not be read: ${facts.store.message}`,
      'check the backend service and the admin token',
    );
  const expected = new Set<string>();
  for (const r of facts.store.registrations) {
    const network = site.networks.find((n) => n.name === r.network);
    // Only allow-list networks put their NICs in the registered set.
    if (network !== undefined && network.egress === 'allow-list')
      expected.add(`${network.gatewayInterface} . ${r.mac} . ${r.ip}`);
  }
  const found = new Set(facts.registered);
  const missing = [...expected].filter((e) => !found.has(e));
  const extra = [...found].filter((e) => !expected.has(e));
  if (missing.length === 0 && extra.length === 0)
    return ok(id, 'set registered', `equal to the store (${expected.size} element(s))`);
  return fail(
    id,
    'set registered',
    [
      missing.length > 0 ? `missing ${missing.join(', ')}` : '',
      extra.length > 0 ? `not in the store ${extra.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; '),
    'restart the backend service: it rebuilds the table from the store on start',
  );
}
