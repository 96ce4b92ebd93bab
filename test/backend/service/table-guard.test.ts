/**
 * The guard's decisions with its programs faked (the lab tests run the real
 * ones: test/lab/backend-attacks.test.ts): what it installs, what it takes
 * for a loss, how it repairs and reports.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { WatchStarter } from '../../../src/exec/watch.js';
import type { AuditEvent } from '../../../src/backend/service/registry.js';
import { TableGuard } from '../../../src/backend/service/table-guard.js';
import { chainNames } from '../../../src/backend/nft/ruleset.js';
import type { ProgramResult, ProgramRunner } from '../../../src/exec/run.js';
import { defaultSite } from '../../../src/site/parse.js';

const site = defaultSite();

const res = (exitCode: number, stdout: string, stderr: string): ProgramResult => ({
  command: [],
  exitCode,
  signal: undefined,
  stdout,
  stderr,
});

/** A fake kernel: ip rules added, the table's chains present or not, sysctls. */
function fakes() {
  const state = {
    rules: { 4: [] as unknown[], 6: [] as unknown[] } as Record<string, unknown[]>,
    chainsPresent: true,
    sysctl: new Map<string, string>(),
    commands: [] as string[],
    lines: [] as ((line: string) => void)[],
  };
  const run: ProgramRunner = async (program, args) => {
    state.commands.push(`${program} ${args.join(' ')}`);
    if (program === 'nft') {
      const chains = state.chainsPresent
        ? chainNames(site).map((name) => ({ chain: { family: 'inet', table: 'ticrypt', name } }))
        : [];
      return res(0, JSON.stringify({ nftables: chains }), '');
    }
    const family = args[0] === '-6' ? '6' : '4';
    if (args.includes('show')) return res(0, JSON.stringify(state.rules[family]), '');
    const pref = Number(args[args.indexOf('pref') + 1]);
    if (state.rules[family]!.some((r) => (r as { priority: number }).priority === pref)) {
      return res(2, '', 'RTNETLINK answers: File exists');
    }
    const iif = args[args.indexOf('iif') + 1];
    const to = args.includes('to') ? args[args.indexOf('to') + 1]!.split('/') : undefined;
    state.rules[family]!.push({
      priority: pref,
      iif,
      ...(to ? { dst: to[0], dstlen: Number(to[1]) } : {}),
      fwmark: '0',
      fwmask: '0x10000000',
      action: 'blackhole',
    });
    return res(0, '', '');
  };
  const watch: WatchStarter = (_argv, onLine) => {
    state.lines.push(onLine);
    return { stop: async () => undefined };
  };
  const sysctl = {
    read: async (path: string) => {
      if (!path.includes('/all/') && !path.includes('bond0.1081')) throw new Error('ENOENT');
      return state.sysctl.get(path) ?? '0';
    },
    write: async (path: string, value: string) => void state.sysctl.set(path, value),
  };
  return { state, run, watch, sysctl };
}

/** A guard over the fakes, auditing into `audits`, with `rebuild` as given and no periodic check in the way. */
function guardOver(
  fake: ReturnType<typeof fakes>,
  rebuild: () => Promise<void>,
  audits: AuditEvent[] = [],
  retryMs?: number,
  onTableLost?: () => void,
): TableGuard {
  const { run, watch, sysctl } = fake;
  return new TableGuard({
    site,
    run,
    watch,
    sysctl,
    audit: (e) => audits.push(e),
    rebuild,
    checkIntervalMs: 60_000,
    ...(retryMs === undefined ? {} : { retryMs }),
    ...(onTableLost === undefined ? {} : { onTableLost }),
  });
}

describe('TableGuard', () => {
  it('installs the rules and ARP settings before the table; a foreign change is a loss, repaired and audited', async () => {
    const fake = fakes();
    const { state } = fake;
    const audits: AuditEvent[] = [];
    let rebuilds = 0;
    let release: () => void = () => {};
    const guard = guardOver(
      fake,
      () => {
        rebuilds += 1;
        return new Promise<void>((resolve) => (release = resolve));
      },
      audits,
    );
    await guard.prepare();
    expect(state.rules['4']).toHaveLength(6);
    expect(state.rules['6']).toHaveLength(3);
    // Only interfaces that exist get their settings (here bond0.1081); the others wait for the next check.
    expect([...state.sysctl.keys()].sort()).toEqual([
      '/proc/sys/net/ipv4/conf/bond0.1081/arp_announce',
      '/proc/sys/net/ipv4/conf/bond0.1081/arp_filter',
      '/proc/sys/net/ipv4/conf/bond0.1081/arp_ignore',
      '/proc/sys/net/ipv4/conf/bond0.1081/src_valid_mark',
    ]);
    await guard.watch();
    expect(guard.health()).toEqual([]);

    // Someone flushes the ruleset: the monitor says so.
    const tableMonitor = state.lines[0]!;
    tableMonitor('{"delete": {"table": {"family": "inet", "name": "ticrypt", "handle": 4}}}');
    await sleep(10);
    expect(rebuilds).toBe(1);
    expect(guard.health()[0]).toMatch(/^table inet ticrypt is not as the backend left it \(nft monitor: delete table/);
    // While it repairs, further events do not start another repair.
    tableMonitor('{"delete": {"chain": {"family": "inet", "table": "ticrypt", "name": "forward", "handle": 3}}}');
    await sleep(10);
    expect(rebuilds).toBe(1);
    release();
    await sleep(10);
    expect(guard.health()).toEqual([]);
    expect(audits.map((e) => `${String(e.outcome)} ${String(e.what)}`)).toEqual(['lost table', 'recovered table']);

    // The table's own element changes are no loss: registrations, and what the DNS front opens and closes.
    tableMonitor('{"add": {"element": {"family": "inet", "table": "ticrypt", "name": "nic_ids", "elem": {}}}}');
    tableMonitor('{"add": {"element": {"family": "inet", "table": "ticrypt", "name": "dns_p16", "elem": {}}}}');
    tableMonitor('{"delete": {"element": {"family": "inet", "table": "ticrypt", "name": "dns_p16", "elem": {}}}}');
    await sleep(10);
    expect(rebuilds).toBe(1);
    await guard.stop();
  });

  it('sees chains missing and rules deleted in its check, and puts the rules back', async () => {
    const fake = fakes();
    const { state } = fake;
    const audits: AuditEvent[] = [];
    let rebuilds = 0;
    const guard = guardOver(
      fake,
      async () => {
        rebuilds += 1;
        state.chainsPresent = true;
      },
      audits,
    );
    await guard.prepare();
    await guard.watch();
    state.rules['4']!.splice(0, 1);
    state.chainsPresent = false;
    await guard.check('test');
    await sleep(10);
    expect(rebuilds).toBe(1);
    expect(state.rules['4']).toHaveLength(6);
    expect(audits.map((e) => `${String(e.outcome)} ${String(e.what)}`)).toEqual(
      expect.arrayContaining(['lost table', 'recovered table']),
    );
    state.rules['4']!.splice(2, 1);
    await guard.check('test');
    expect(state.rules['4']).toHaveLength(6);
    expect(
      audits
        .filter((e) => e.what === 'rules')
        .map((e) => e.outcome)
        .slice(-2),
    ).toEqual(['lost', 'recovered']);
    await guard.stop();
  });

  it('tells onTableLost (the DNS front) at once, before the rebuild starts, and once per loss', async () => {
    const fake = fakes();
    const events: string[] = [];
    const guard = guardOver(
      fake,
      async () => {
        events.push('rebuild');
        fake.state.chainsPresent = true;
      },
      [],
      undefined,
      () => events.push('table lost'),
    );
    await guard.prepare();
    await guard.watch();
    fake.state.lines[0]!('{"delete": {"table": {"family": "inet", "name": "ticrypt", "handle": 4}}}');
    await sleep(10);
    expect(events).toEqual(['table lost', 'rebuild']);
    // A lost rule is no loss of the table: the DNS front is not told.
    fake.state.rules['4']!.splice(0, 1);
    await guard.check('test');
    expect(events).toEqual(['table lost', 'rebuild']);
    await guard.stop();
  });

  it('refuses to start when an IPv4 rule cannot be added', async () => {
    const { run: base, watch, sysctl } = fakes();
    const run: ProgramRunner = async (program, args, options) =>
      args[2] === 'add' ? res(2, '', 'RTNETLINK answers: Operation not permitted') : base(program, args, options);
    const guard = new TableGuard({ site, run, watch, sysctl, audit: () => {}, rebuild: async () => {} });
    await expect(guard.prepare()).rejects.toThrow(
      /Cannot add the fail-closed rule ip -4 rule add pref 100 .*not permitted/,
    );
  });
});

describe('TableGuard when the table keeps vanishing', () => {
  it('rebuilds at most once per retry period, not in a loop', async () => {
    const fake = fakes();
    let rebuilds = 0;
    const guard = guardOver(fake, async () => void (rebuilds += 1), [], 200);
    await guard.prepare();
    await guard.watch();
    fake.state.chainsPresent = false; // every rebuild "succeeds", and the chains are still not there
    await guard.check('test');
    await sleep(500);
    expect(rebuilds).toBeGreaterThanOrEqual(2);
    expect(rebuilds).toBeLessThanOrEqual(4);
    await guard.stop();
  });
});
