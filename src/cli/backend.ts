import type { Command } from 'commander';
import { pino } from 'pino';
import { startBackend } from '../backend/daemon.js';
import { openStore } from '../backend/store/store.js';
import type { Role } from '../backend/store/tokens.js';
import { UsageError } from '../errors/usage-error.js';
import { isIpv4 } from '../site/address.js';
import { loadSite } from '../site/load.js';
import { HostName } from '../site/primitives.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { parseInteger } from './options.js';
import { DEFAULT_STATE_DIR, DEFAULT_STORE } from '../names.js';

interface ServeOptions {
  site?: string;
  store: string;
  stateDir: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  logDrops?: boolean;
}

/** `ticrypt-net backend serve|token ...`: the backend service and its API tokens. */
export function addBackendCommands(program: Command, io: CliIo): void {
  const backend = program.command('backend').description('The backend gateway: allow-list service, nftables, dnsmasq');

  backend
    .command('serve')
    .description('Rebuild table inet ticrypt and dnsmasq from the store, then serve the API until SIGTERM')
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--state-dir <dir>', 'dnsmasq configs, host entries and leases', DEFAULT_STATE_DIR)
    .option('--listen <addr:port>', 'API address; default the site backend.management address and port')
    .option('--tls-cert <file>', 'TLS certificate (PEM)')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--insecure-http', 'serve plain HTTP (a protected management network, or tests)')
    .option('--log-drops', "log dropped secure egress (rate-limited, prefix 'ticrypt')")
    .action(async (options: ServeOptions) => {
      const site = await loadSite(options.site);
      if (!options.insecureHttp && (options.tlsCert === undefined || options.tlsKey === undefined)) {
        throw new UsageError('backend serve: expected --tls-cert and --tls-key (or --insecure-http), found neither');
      }
      const logger = pino({ base: { service: 'ticrypt-net-backend' } }, pino.destination({ dest: 1, sync: true }));
      const running = await startBackend({
        site,
        logger,
        storePath: options.store,
        stateDir: options.stateDir,
        ...(options.listen === undefined ? {} : { listen: parseListen(options.listen) }),
        ...(options.tlsCert && options.tlsKey ? { tls: { cert: options.tlsCert, key: options.tlsKey } } : {}),
        insecureHttp: options.insecureHttp === true,
        logDrops: options.logDrops === true,
      });
      logger.info({ url: running.url }, 'listening');
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping');
          resolve();
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await running.close();
    });

  const token = backend.command('token').description('API tokens: one per host, and admin tokens for allow-lists');
  token
    .command('add')
    .description(
      'Issue a token (replacing any earlier one of the same name and role) and print it; only its hash is stored',
    )
    .argument('<name>', 'the host id (as the hook config names it) or, with --admin or --metrics, a name')
    .option('--admin', 'an admin token (allow-lists, placements, metrics) instead of a host token')
    .option('--metrics', 'a token that may only read /metrics')
    .option('--change-role', "replace a token of another role (an existing name's role never changes silently)")
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .action((name: string, options: { admin?: boolean; metrics?: boolean; changeRole?: boolean; store: string }) => {
      const parsed = HostName.safeParse(name);
      if (!parsed.success) throw new UsageError(`token name: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      if (options.admin && options.metrics)
        throw new UsageError('token add: expected --admin or --metrics, found both');
      const role: Role = options.admin ? 'admin' : options.metrics ? 'metrics' : 'host';
      const store = openStore(options.store);
      try {
        const existing = store.tokens.roleOf(name);
        if (existing !== undefined && existing !== role && options.changeRole !== true) {
          throw new UsageError(
            `token add ${name}: expected role ${existing} (the token ${name} has now), found ${role}: pass --change-role to replace the ${existing} token with a ${role} token`,
          );
        }
        const issued = store.tokens.issue({ name, role });
        io.out(program.opts<GlobalOptions>().json ? toJson({ name, role, token: issued }) : `${issued}\n`);
      } finally {
        store.close();
      }
    });
  token
    .command('ls')
    .description('List who holds a token')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .action((options: { store: string }) => {
      const store = openStore(options.store);
      try {
        const list = store.tokens.list();
        io.out(program.opts<GlobalOptions>().json ? toJson(list) : list.map((p) => `${p.role}\t${p.name}\n`).join(''));
      } finally {
        store.close();
      }
    });
  token
    .command('revoke')
    .description("Revoke a host's or admin's token")
    .argument('<name>')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .action((name: string, options: { store: string }) => {
      const store = openStore(options.store);
      try {
        if (!store.tokens.revoke(name)) throw new UsageError(`No token for ${JSON.stringify(name)}`);
        io.out(`revoked ${name}\n`);
      } finally {
        store.close();
      }
    });
}

function parseListen(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  if (colon < 0 || !isIpv4(host))
    throw new UsageError(`--listen: expected ADDRESS:PORT like 198.18.0.1:8443, found ${JSON.stringify(text)}`);
  return { host, port: parseInteger('--listen port', text.slice(colon + 1), 0, 65535) };
}
