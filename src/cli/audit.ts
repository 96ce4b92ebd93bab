/**
 * `ticrypt-net audit query|verify`: read the backend's audit day files
 * directly (the site's `backend.auditStore.dir`, or `--dir`), streaming.
 * May not: decide anything: it parses, reads through src/backend/audit, prints.
 */
import type { Command } from 'commander';
import { queryAudit, type QueryHit } from '../backend/audit/query.js';
import { parseTimeArg } from '../backend/audit/time-arg.js';
import { utcDay } from '../backend/audit/day-files.js';
import { verifyChain, type VerifyReport } from '../backend/audit/verify.js';
import { AuditChainError } from '../errors/audit-chain-error.js';
import { UsageError } from '../errors/usage-error.js';
import { loadSite } from '../site/load.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';

interface DirOptions {
  site?: string;
  dir?: string;
}

function withDir(command: Command): Command {
  return command
    .option('--site <file>', "site file (YAML): its backend.auditStore.dir; default: the presets'")
    .option('--dir <dir>', 'the audit directory itself (overrides --site)');
}

async function auditDir(options: DirOptions): Promise<string> {
  return options.dir ?? (await loadSite(options.site)).backend.auditStore.dir;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Row = Record<string, unknown>;
const str = (value: unknown) => (value === null || value === undefined ? '-' : String(value));
const endpoint = (value: unknown) => {
  const e = value as { ip?: unknown; port?: unknown } | undefined;
  return e === undefined ? '-' : e.port === null || e.port === undefined ? str(e.ip) : `${str(e.ip)}:${str(e.port)}`;
};
const pad = (text: string, width: number) => (text.length >= width ? `${text} ` : text.padEnd(width + 1));
const WIDTHS = [27, 10, 16, 5, 21, 21, 10, 10] as const;
const HEADER = ['END (UTC)', 'KIND', 'VM', 'PROTO', 'SOURCE', 'DESTINATION', 'BYTES OUT', 'BYTES IN'];

/** One record as a table row: end time, kind, VM name, protocol, endpoints, bytes, why (admitted by / reason / count). */
function row(hit: QueryHit): string {
  const rec = hit.stored.rec as unknown as Row;
  const vm = rec.vm as { name?: unknown; uuid?: unknown; mac?: unknown; network?: unknown } | undefined;
  const bytes = rec.bytes as { out?: unknown; in?: unknown } | undefined;
  const admitted = rec.admittedBy as { kind?: unknown; entry?: unknown } | undefined;
  const why =
    admitted !== undefined
      ? `${str(admitted.kind)} ${str(admitted.entry)}`
      : rec.kind === 'suppressed'
        ? `${str(rec.reason)} x${str(rec.count)}`
        : rec.kind === 'retention'
          ? `removed ${(rec.removed as { file: string }[]).map((f) => f.file).join(', ')} (${str(rec.reason)})`
          : rec.kind === 'torn'
            ? `torn tail of ${str(rec.file)}: ${str(rec.tornBytes)} bytes`
            : str(rec.reason);
  const cells = [
    str(rec.end ?? hit.stored.at),
    str(rec.kind),
    // A refusal of an unregistered NIC has no name: its MAC, or for a count only its network.
    str(vm?.name ?? vm?.uuid ?? vm?.mac ?? (vm?.network === undefined ? undefined : `(${str(vm.network)})`)),
    str(rec.proto),
    endpoint(rec.src),
    endpoint(rec.dst),
    str(bytes?.out),
    str(bytes?.in),
  ];
  return `${cells.map((c, i) => pad(c, WIDTHS[i] ?? 0)).join('')}${why}\n`;
}

function verifyText(report: VerifyReport): string {
  if (report.files.length === 0) return 'no audit files in the range\n';
  const lines = [
    `${report.break === undefined ? 'audit chain whole' : 'audit chain BROKEN'}: ${report.lines} lines in ${report.files.length} file${report.files.length === 1 ? '' : 's'} (seq ${str(report.firstSeq)}-${str(report.lastSeq)}), ${report.files[0]} .. ${report.files.at(-1)}`,
    `anchored: ${report.anchor}`,
  ];
  if (report.removed.length > 0) {
    lines.push(
      `removed by retention (recorded): ${report.removed.map((r) => `${r.file} (to seq ${r.lastSeq})`).join(', ')}`,
    );
  }
  for (const torn of report.torn) {
    lines.push(`torn tail (recorded): ${torn.file}, ${torn.tornBytes} bytes after ${torn.validBytes}`);
  }
  if (report.break !== undefined) {
    const where = report.break.line > 0 ? ` line ${report.break.line}` : '';
    lines.push(`first break: ${report.break.file}${where}: ${report.break.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `ticrypt-net audit query|verify`: the backend's audit records (read directly from its audit directory). */
export function addAuditCommands(program: Command, io: CliIo): void {
  const audit = program
    .command('audit')
    .description("The backend's audit records: flows, refusals, on hash-chained day files");
  const json = () => program.opts<GlobalOptions>().json === true;

  withDir(
    audit
      .command('query')
      .description("Print a VM's records over a time range: a table, or with --json the stored lines (JSON lines)")
      .option('--vm <uuid>', "only this VM's records (default: all, the store's own events included)")
      .option('--since <time>', 'from: ISO time or back from now (90s, 30m, 24h, 7d)', '24h')
      .option('--until <time>', 'to: ISO time or back from now (default: now)'),
  ).action(async (options: DirOptions & { vm?: string; since: string; until?: string }) => {
    const now = new Date();
    if (options.vm !== undefined && !UUID.test(options.vm)) {
      throw new UsageError(`--vm: expected a VM uuid, found ${JSON.stringify(options.vm)}`);
    }
    const since = parseTimeArg('--since', options.since, now);
    const until = options.until === undefined ? undefined : parseTimeArg('--until', options.until, now);
    const dir = await auditDir(options);
    const asJson = json();
    let buffered = asJson ? '' : `${HEADER.map((h, i) => pad(h, WIDTHS[i] ?? 0)).join('')}WHY\n`;
    let count = 0;
    for await (const hit of queryAudit(dir, {
      since,
      ...(until === undefined ? {} : { until }),
      ...(options.vm === undefined ? {} : { vm: options.vm.toLowerCase() }),
    })) {
      buffered += asJson ? `${hit.text}\n` : row(hit);
      count += 1;
      if (buffered.length > 1 << 16) {
        io.out(buffered);
        buffered = '';
      }
    }
    if (!asJson && count === 0) buffered += '(no records)\n';
    if (buffered.length > 0) io.out(buffered);
  });

  withDir(
    audit
      .command('verify')
      .description('Walk the hash chain over a range of days; print the first break (file, line) and fail on one')
      .option('--since <time>', 'from the day of: ISO time or back from now (default: the oldest file)')
      .option('--until <time>', 'to the day of: ISO time or back from now (default: the newest file)')
      .option(
        '--head <seq:sha256...>',
        'a head the store published earlier, SEQ or SEQ:SHA256 (log, /metrics ticrypt_audit_chain_seq): the chain must reach it, and that line must still hash so (repeatable)',
      ),
  ).action(async (options: DirOptions & { since?: string; until?: string; head?: string[] }) => {
    const anchors = (options.head ?? []).map((text) => {
      const match = /^([1-9][0-9]{0,14})(?::([0-9a-f]{64}))?$/.exec(text);
      if (match === null) throw new UsageError(`--head: expected <seq>[:<sha256 hex>], found ${JSON.stringify(text)}`);
      return { seq: Number(match[1]), ...(match[2] === undefined ? {} : { hash: match[2] }) };
    });
    const now = new Date();
    const since = options.since === undefined ? undefined : utcDay(parseTimeArg('--since', options.since, now));
    const until = options.until === undefined ? undefined : utcDay(parseTimeArg('--until', options.until, now));
    const report = await verifyChain(await auditDir(options), {
      ...(since === undefined ? {} : { sinceDay: since }),
      ...(until === undefined ? {} : { untilDay: until }),
      anchors,
    });
    io.out(json() ? toJson(report) : verifyText(report));
    if (report.break !== undefined) {
      throw new AuditChainError(report.break.file, report.break.line, report.break.detail);
    }
  });
}
