import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { startBackend } from '../backend/daemon.js';
import {
  applyBackend,
  backendUnconvergedError,
  planBackendNow,
  type BackendRunOptions,
} from '../backend/setup/apply.js';
import { describeBackendAction } from '../backend/setup/describe.js';
import type { BackendAction } from '../backend/setup/model.js';
import { renderBackendNmKeyfiles } from '../backend/setup/nmconnection.js';
import { openStore } from '../backend/store/store.js';
import type { Role } from '../backend/store/tokens.js';
import { UsageError } from '../errors/usage-error.js';
import { isIpv4 } from '../site/address.js';
import { loadSite } from '../site/load.js';
import { HostName } from '../site/primitives.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { parseInteger } from './options.js';
import { NETLINK_BUFFER_RANGE } from '../backend/audit/ulogd-config.js';
import { DEFAULT_ROTATE_BYTES } from '../backend/audit/service.js';
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
  dnsRate?: string;
  audit?: string | boolean;
  auditUlogd?: string;
  auditRecords?: string;
  auditNetlinkBuffer?: string;
  auditRotateBytes?: string;
}

interface SetupOptions {
  site?: string;
  netns?: string;
  root: string;
  service: boolean;
}

function withSetupOptions(command: Command): Command {
  return command
    .option('--site <file>', 'site file (YAML); default: the three preset networks')
    .option(
      '--netns <name>',
      "the backend's network namespace (tests, the demo): interfaces and sysctls there; the machine's unit left alone",
    )
    .option('--root <dir>', 'write files (/etc/sysctl.d/, /etc/systemd/system/) under this root', '/')
    .option('--no-service', 'leave the systemd unit alone (another service manager runs the backend)');
}

/** The run options of `--netns`, `--root` and `--no-service`. */
export function backendRunOptions(options: SetupOptions): BackendRunOptions {
  return {
    root: options.root,
    ...(options.netns === undefined ? {} : { netns: options.netns }),
    noService: !options.service,
  };
}

function actionJson(action: BackendAction) {
  // File texts are long and derivable: JSON carries the description instead.
  const { ...rest } = action as BackendAction & { text?: string };
  delete rest.text;
  return { ...rest, description: describeBackendAction(action) };
}

/** `ticrypt-net backend plan|apply|serve|token ...`: the backend's set-up, service and API tokens. */
export function addBackendCommands(program: Command, io: CliIo): void {
  const backend = program.command('backend').description('The backend gateway: allow-list service, nftables, dnsmasq');
  const json = () => program.opts<GlobalOptions>().json === true;

  withSetupOptions(
    backend
      .command('plan')
      .description('Show what backend apply would change (or write NetworkManager keyfiles with --format nmconnection)')
      .option(
        '--format <format>',
        "'text' (the actions) or 'nmconnection' (keyfiles of the gateway interfaces, to --out)",
        'text',
      )
      .option('--out <dir>', 'where --format nmconnection writes its keyfiles'),
  ).action(async (options: SetupOptions & { format: string; out?: string }) => {
    const site = await loadSite(options.site);
    if (options.format === 'nmconnection') {
      if (options.out === undefined) throw new UsageError('--format nmconnection: expected --out <dir>, found none');
      await mkdir(options.out, { recursive: true });
      const written: string[] = [];
      for (const file of renderBackendNmKeyfiles(site)) {
        const path = join(options.out, file.fileName);
        await writeFile(path, file.text, { mode: 0o600 });
        written.push(path);
      }
      io.out(json() ? toJson({ written }) : written.map((p) => `wrote ${p}\n`).join(''));
      return;
    }
    if (options.format !== 'text') {
      throw new UsageError(`--format: expected 'text' or 'nmconnection', found ${JSON.stringify(options.format)}`);
    }
    const actions = await planBackendNow(site, backendRunOptions(options));
    if (json()) io.out(toJson({ actions: actions.map(actionJson) }));
    else
      io.out(
        actions.length === 0 ? 'nothing to change\n' : actions.map((a) => `${describeBackendAction(a)}\n`).join(''),
      );
  });

  withSetupOptions(
    backend
      .command('apply')
      .description(
        'Create or repair the gateway interfaces, addresses, forwarding, sysctls and the unit, then confirm',
      ),
  ).action(async (options: SetupOptions) => {
    const site = await loadSite(options.site);
    const result = await applyBackend(site, {
      ...backendRunOptions(options),
      onAction: (action) => {
        if (!json()) io.out(`${describeBackendAction(action)}\n`);
      },
    });
    const { applied, remaining } = result;
    if (json()) io.out(toJson({ applied: applied.map(actionJson), remaining: remaining.map(actionJson) }));
    else if (applied.length === 0 && remaining.length === 0) io.out('nothing to change\n');
    else if (remaining.length === 0) io.out(`applied ${applied.length} change(s); confirmed: nothing left to change\n`);
    const error = backendUnconvergedError(result);
    if (error) throw error;
  });

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
    .option('--dns-rate <n>', 'DNS queries per second each VM may send (bursts of twice that)', '100')
    .option(
      '--audit [dir]',
      "flow audit of the 'audit: records' networks: ulogd's files in dir (default <state-dir>/flow-audit)",
    )
    .option('--audit-records <dir>', "the audit records' day files (default the site's backend.auditStore.dir)")
    .option(
      '--audit-ulogd <mode>',
      "'managed' (the service runs ulogd) or 'external' (ticrypt-net-ulogd.service does)",
      'managed',
    )
    .option(
      '--audit-netlink-buffer <bytes>',
      "both of ulogd's netlink socket buffers (tests driving the audit past capacity; default 64 MiB conntrack events, 8 MiB NFLOG; read when ulogd starts)",
    )
    .option(
      '--audit-rotate-bytes <bytes>',
      "rotate ulogd's output files once this many of their bytes are read and stored (renamed, ulogd reopens on SIGHUP, the old file read to its end and removed)",
      String(DEFAULT_ROTATE_BYTES),
    )
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
        dnsRate: parseInteger('--dns-rate', options.dnsRate ?? '100', 1, 1_000_000),
        ...(options.audit === undefined || options.audit === false ? {} : { audit: auditOptions(options) }),
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
      'Issue a token (replacing any earlier one of the same name and role) and print it; only its hash is stored. With --out: write it to FILE (0600), and keep a FILE whose token the store still accepts',
    )
    .argument('<name>', 'the host id (as the hook config names it) or, with --admin or --metrics, a name')
    .option('--admin', 'an admin token (allow-lists, placements, metrics) instead of a host token')
    .option('--metrics', 'a token that may only read /metrics')
    .option('--change-role', "replace a token of another role (an existing name's role never changes silently)")
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--out <file>', 'write the token here instead of printing it; unchanged while the store accepts it')
    .action(
      async (
        name: string,
        options: { admin?: boolean; metrics?: boolean; changeRole?: boolean; store: string; out?: string },
      ) => {
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
          if (options.out === undefined) {
            const issued = store.tokens.issue({ name, role });
            io.out(json() ? toJson({ name, role, token: issued }) : `${issued}\n`);
            return;
          }
          const held = (await readFile(options.out, 'utf8').catch(() => '')).trim();
          const holder = held === '' ? undefined : store.tokens.verify(held);
          const changed = holder?.name !== name || holder.role !== role;
          if (changed) await writeSecret(options.out, `${store.tokens.issue({ name, role })}\n`);
          io.out(
            json()
              ? toJson({ name, role, file: options.out, changed })
              : `${changed ? 'wrote' : 'kept'} ${options.out} (${role} token of ${name})\n`,
          );
        } finally {
          store.close();
        }
      },
    );
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

/** Write a secret whole: created 0600, renamed into place, so no reader sees half of it. */
async function writeSecret(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

function parseListen(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  if (colon < 0 || !isIpv4(host))
    throw new UsageError(`--listen: expected ADDRESS:PORT like 198.18.0.1:8443, found ${JSON.stringify(text)}`);
  return { host, port: parseInteger('--listen port', text.slice(colon + 1), 0, 65535) };
}

function auditOptions(options: ServeOptions): {
  dir?: string;
  recordsDir?: string;
  ulogd: 'managed' | 'external';
  netlinkBuffer?: number;
  rotateBytes: number;
} {
  const mode = options.auditUlogd ?? 'managed';
  if (mode !== 'managed' && mode !== 'external') {
    throw new UsageError(`--audit-ulogd: expected 'managed' or 'external', found ${JSON.stringify(mode)}`);
  }
  return {
    ...(typeof options.audit === 'string' ? { dir: options.audit } : {}),
    ...(options.auditRecords === undefined ? {} : { recordsDir: options.auditRecords }),
    ulogd: mode,
    rotateBytes: parseInteger(
      '--audit-rotate-bytes',
      options.auditRotateBytes ?? String(DEFAULT_ROTATE_BYTES),
      4096,
      Number.MAX_SAFE_INTEGER,
    ),
    ...(options.auditNetlinkBuffer === undefined
      ? {}
      : {
          netlinkBuffer: parseInteger(
            '--audit-netlink-buffer',
            options.auditNetlinkBuffer,
            NETLINK_BUFFER_RANGE.min,
            NETLINK_BUFFER_RANGE.max,
          ),
        }),
  };
}
