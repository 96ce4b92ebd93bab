/**
 * The qemu and network hook's Node entry, bundled to dist/hook/hook.cjs (see
 * scripts/bundle-hook.mjs): `node hook.cjs CONFIG CACHE qemu|network NAME OP
 * SUBOP EXTRA...`, run by libvirt inside its hook call. It is the one place of
 * the hook that touches process streams and exits, and it bounds the run with
 * a watchdog. May not: write to stdout (for migrate and restore, libvirt takes
 * the hook's stdout as the new domain XML), call libvirt, or import a module
 * the run does not need (each costs start-up time at every VM start and stop).
 */
import { readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { XmlParseError } from '../../errors/xml-parse-error.js';
import { join } from 'node:path';
import type * as ConfigModule from '../setup/config.js';
import { loadConfigCached } from './config-cache.js';
import { DEFAULT_HOOK_MS, type HookConfig } from '../setup/config-types.js';
import { transportOf } from '../agent/environment.js';
import { hookLog, type HookLog } from '../agent/log.js';
import { opsOf } from './ops.js';
import { type Inflight, rescueInflight, runHook } from './run.js';
import { trace } from './trace.js';

trace('loaded');

/** Largest stdin read: a domain XML is kilobytes; anything this big is not one. */
const MAX_STDIN = 32 * 1024 * 1024;

const startedAt = Date.now() - Math.round(process.uptime() * 1000);
const [configPath = '', cachePath = '', kind = '', ...args] = process.argv.slice(2);

let activeLog: HookLog | undefined;
const inflight: Inflight = { settled: new Set() };
let watchdog: NodeJS.Timeout | undefined;
let bound = DEFAULT_HOOK_MS;
/**
 * At the bound, save what is unsettled and exit. Before the run has its events
 * (reading stdin, parsing: local work, never the backend) it waits on, up to
 * ten times the bound, so a starved machine delays an event instead of losing it.
 */
const armWatchdog = (hookMs: number, late = false) => {
  bound = hookMs;
  if (watchdog) clearTimeout(watchdog);
  watchdog = setTimeout(
    () => {
      const code = rescueInflight(inflight, activeLog);
      if (code === undefined && !late) return armWatchdog(hookMs * 10, true);
      writeSync(
        2,
        `ticrypt-net-hook: error: ${kind} ${args[1] ?? ''} of ${args[0] ?? ''} reached its bound of ${bound} ms; exiting\n`,
      );
      process.exit(code ?? 0);
    },
    Math.max(1, startedAt + hookMs - Date.now()),
  );
  watchdog.unref();
};
armWatchdog(DEFAULT_HOOK_MS);

async function loadFull(file: string): Promise<HookConfig> {
  // The validator (yaml + zod) is a separate bundle, loaded only when hook.yaml changed.
  if (typeof __dirname === 'string' && __filename.endsWith('.cjs')) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require(join(__dirname, 'hook-config.cjs')) as typeof ConfigModule;
    return module.loadHookConfig(file);
  }
  const specifier = '../setup/config.js';
  const module = (await import(specifier)) as typeof ConfigModule;
  return module.loadHookConfig(file);
}

/**
 * Read stdin to its end, synchronously: libvirt writes the whole XML and closes
 * the pipe, and a blocking read costs less than starting the stream machinery
 * or the thread pool. A terminal (a person running it by hand) is not read.
 */
function readStdin(): Promise<string> {
  if (isatty(0)) return Promise.resolve('');
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const buffer = Buffer.allocUnsafe(size < 65536 ? 65536 : 1024 * 1024);
    let bytes: number;
    try {
      bytes = readSync(0, buffer, 0, buffer.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EOF' || code === 'EBADF') break;
      return Promise.reject(error as Error);
    }
    if (bytes === 0) break;
    size += bytes;
    if (size > MAX_STDIN) {
      return Promise.reject(
        new XmlParseError('hook input', `expected a domain XML, found more than ${MAX_STDIN} bytes on stdin`),
      );
    }
    chunks.push(buffer.subarray(0, bytes));
  }
  return Promise.resolve(Buffer.concat(chunks).toString('utf8'));
}

async function main(): Promise<number> {
  if ((kind !== 'qemu' && kind !== 'network') || configPath === '' || cachePath === '') {
    writeSync(
      2,
      `ticrypt-net-hook: error: expected CONFIG CACHE qemu|network NAME OP ..., found ${JSON.stringify(process.argv.slice(2))}; doing nothing\n`,
    );
    return 0;
  }
  if (!Object.hasOwn(opsOf(kind), args[1] ?? '')) return 0;
  const { code, log } = await runHook(
    { kind, args, stdin: readStdin },
    {
      startedAt,
      inflight,
      loadConfig: async () => {
        const loaded = await loadConfigCached(configPath, cachePath, loadFull);
        if (loaded.config) armWatchdog(loaded.config.timeouts.hookMs);
        return loaded;
      },
      transport: transportOf,
      log: (config) => (activeLog = hookLog({ syslog: config?.syslog ?? true })),
    },
  );
  await log?.close();
  trace('exit');
  return code;
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    writeSync(2, `ticrypt-net-hook: error: unexpected: ${(error as Error).stack ?? String(error)}\n`);
    await activeLog?.close();
    process.exit(0);
  },
);
