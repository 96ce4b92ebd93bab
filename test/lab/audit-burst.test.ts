/**
 * Issue 16's flow audit under a burst, against the real programs (the same
 * set-up as test/lab/audit.test.ts: the built CLI's `backend serve --audit`
 * in a "backend" namespace running Debian's ulogd2): a secure "VM" namespace
 * opens new connections to its allowed server as fast as wrk can for 10 s
 * (a new connection per request, nginx in the internet namespace closing
 * each), aiming at 5,000/s. Every flow the table accepted as new from the
 * VM's network (its `flows_from_vms.secure` counter) must become exactly one
 * flow record, with `ticrypt_audit_lost_total` at 0 for every way of losing
 * one; then again with the service stopped and started mid-burst (counted by
 * the test's own counter, since the restarted service's table starts its
 * counters again), and the day files still one chain. Conntrack close timeouts are cut to 1 s (see
 * audit.test.ts); end events still wait for conntrack's garbage collector,
 * so the counts are awaited until they agree (up to 150 s).
 *
 *     vm a ── OVS bridge <p>br ── g1 ─ backend ── up ═══ eth0 internet 198.51.100.10 (nginx :5001)
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFiles } from '../../src/backend/audit/service.js';
import { runningUlogd } from '../../src/backend/audit/ulogd-process.js';
import { verifyChain } from '../../src/backend/audit/verify.js';
import { AuditLab } from './audit-lab.js';
import { labUuid } from './backend-lab.js';
import { runPrefix } from './names.js';
import { labAvailable, programsAvailable } from './prereq.js';

const available =
  labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'conntrack', 'ip', 'ethtool') &&
  programsAvailable('ulogd', 'wrk', 'nginx');
const SERVER = '198.51.100.10';
const PORT = 5001;
const VM_A = { network: 'secure', mac: '52:54:00:a0:d2:01', vm: labUuid(0xad2) };
const COUNTER = 'flows_from_vms.secure';
const COUNT_TABLE = 'burst_count';
const BURST_S = 10;

describe.skipIf(!available)('flow audit under a burst of new connections (lab)', { timeout: 400_000 }, () => {
  const p = runPrefix();
  let built: AuditLab<'a'> | undefined;

  const audit = (): AuditLab<'a'> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const lab = () => audit().lab;

  /**
   * New flows from the VM to the server that the table accepted: the test's own counter, in its own table on
   * the forward hook after table inet ticrypt's filter and count chains (only what they accept reaches it),
   * which a restarted service's new ruleset leaves alone (its own counters start again at 0).
   */
  async function accepted(): Promise<number> {
    const { stdout } = await lab().backend.run('nft', ['list', 'counter', 'inet', COUNT_TABLE, 'burst']);
    return Number(/packets (\d+)/.exec(stdout)?.[1]);
  }

  /** The flow records to the server in the store's day files. */
  async function flowRecords(): Promise<number> {
    return (await audit().records()).filter((r) => r.kind === 'flow' && r.dst.port === PORT).length;
  }

  const metrics = () => audit().metrics();
  /** The first capture of `pattern` in a /metrics text (0 when absent). */
  const metric = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);

  /** `ticrypt_audit_records_total{kind="flow"}` of the running service (absent until the first, and 0 again with each service). */
  const flowMetric = () => audit().metric(/ticrypt_audit_records_total\{kind="flow"\} (\d+)/);

  /** Every `ticrypt_audit_lost_total` series, by how. */
  const lost = () => audit().lost();

  /** wrk from the VM to the server for `seconds`, each request on a new connection: requests done and their rate. */
  async function burst(seconds: number): Promise<{ requests: number; rate: number; errors: string }> {
    const { stdout } = await lab().vm.a.run(
      'wrk',
      ['-t', '2', '-c', '64', '-d', `${seconds}s`, '-H', 'Connection: close', `http://${SERVER}:${PORT}/`],
      { timeout: (seconds + 30) * 1000 },
    );
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? Number.NaN);
    const rate = Number(/Requests\/sec:\s+([0-9.]+)/.exec(stdout)?.[1] ?? Number.NaN);
    return { requests, rate, errors: /Socket errors:.*/.exec(stdout)?.[0] ?? '' };
  }

  /** Wait until the store holds `expected` flow records to the server (or their number stops moving past 150 s). */
  async function settle(expected: number): Promise<number> {
    const deadline = Date.now() + 150_000;
    let seen = -1;
    for (;;) {
      seen = await flowRecords();
      if (seen >= expected || Date.now() > deadline) return seen;
      await sleep(2000);
    }
  }

  beforeAll(async () => {
    built = await AuditLab.create(p, {
      site: { networks: { secure: { preset: 'secure' } } },
      vms: { a: VM_A },
      internet: [`${SERVER}/24`],
      tokens: { 'kvm-1': [], ops: ['--admin'], prometheus: ['--metrics'] },
      // The load side: ports reused soon after a close, as many as the range holds.
      loadVms: ['a'],
    });
    await built.startService();
    const { ip } = await built.registerVm('a');
    const count = [
      `table inet ${COUNT_TABLE} {`,
      '  counter burst {}',
      '  chain forward { type filter hook forward priority filter + 20; policy accept;',
      `    ct state new ip saddr ${ip} ip daddr ${SERVER} tcp dport ${PORT} counter name burst`,
      '  }',
      '}',
    ].join('\n');
    await built.lab.backend.run('nft', ['-f', '-'], { input: `${count}\n` });
    await built.lab.allow('a', [{ address: SERVER, protocol: 'tcp', ports: PORT }]);
    // nginx answering each request with 1 byte and closing the connection (as bench/netlab.ts runs it).
    await built.startNginx(built.lab.internet.name, `${SERVER}:${PORT}`);
  });

  afterAll(async () => {
    await built?.remove();
  });

  it('records every new flow of a 10-second burst exactly once, losing none', async () => {
    const countBefore = await lab().counter(COUNTER);
    const ownBefore = await accepted();
    const recordsBefore = await flowRecords();
    const metricBefore = await flowMetric();
    const load = await burst(BURST_S);
    const flows = (await lab().counter(COUNTER)) - countBefore;
    console.log(
      `burst: ${load.requests} requests, ${load.rate.toFixed(0)} new connections/s (${load.errors || 'no socket errors'}); table accepted ${flows} new flows`,
    );
    // Positive control: the burst went through the table (and wrk saw them answered); the test's counter agrees.
    expect(flows).toBeGreaterThanOrEqual(load.requests);
    expect((await accepted()) - ownBefore).toBe(flows);
    const recorded = (await settle(recordsBefore + flows)) - recordsBefore;
    // A few more seconds: nothing beyond the accepted flows arrives (no record twice).
    await sleep(3000);
    expect((await flowRecords()) - recordsBefore).toBe(recorded);
    expect(recorded).toBe(flows);
    expect((await flowMetric()) - metricBefore).toBe(flows);
    expect((await verifyChain(audit().recordsDir)).break).toBeUndefined();
  });

  // ulogd's conntrack socket runs reliable=1: the kernel keeps an end event it overran and resends it, so
  // those Drops are overruns (ticrypt_audit_netlink_overruns_total), not losses (seen: 1,508 in a burst whose
  // every flow was on record); the NFLOG socket's Drops are losses.
  it('reports no loss for that burst in ticrypt_audit_lost_total', async () => {
    for (const [how, value] of Object.entries(await lost())) expect(value, `lost by ${how}`).toBe(0);
  });

  // Was skipped as a known defect (seen 2026-12-01: 47,114 of 94,969 and 34,997 of 72,724 flows on record): the
  // lab's service harness ended ulogd with the service (its orphan), so every flow that ended in the ~6 s before
  // the next service started a new ulogd went to no listener, and the kernel drops an end event nobody listens
  // for (ctnetlink reports it delivered); the 64 MiB netlink buffer was also never applied (ulogd-config.ts).
  // The logger outlives the service, as designed: its pid is the same after the restart.
  it('loses no record of a burst when the service is restarted in the middle of it', async () => {
    const countBefore = await accepted();
    const recordsBefore = await flowRecords();
    const logger = await runningUlogd(auditFiles(join(lab().paths.state, 'flow-audit')).pid);
    expect(logger, 'ulogd runs').toBeDefined();
    const running = burst(BURST_S);
    await sleep(3000);
    await lab().services.at(-1)?.stop();
    await sleep(2000);
    await lab().startService();
    expect(await runningUlogd(auditFiles(join(lab().paths.state, 'flow-audit')).pid), 'the same ulogd').toBe(logger);
    const load = await running;
    const flows = (await accepted()) - countBefore;
    console.log(
      `burst with a restart: ${load.requests} requests, ${load.rate.toFixed(0)} new connections/s; table accepted ${flows} new flows`,
    );
    expect(flows).toBeGreaterThanOrEqual(load.requests);
    const recorded = (await settle(recordsBefore + flows)) - recordsBefore;
    await sleep(3000);
    const overruns = metric(await metrics(), /^ticrypt_audit_netlink_overruns_total (\d+)$/m);
    console.log(`after the restart: ${recorded} of ${flows} on record; ${overruns} conntrack event overruns in all`);
    expect((await flowRecords()) - recordsBefore).toBe(recorded);
    expect(recorded).toBe(flows);
    for (const [how, value] of Object.entries(await lost())) expect(value, `lost by ${how}`).toBe(0);
    const report = await verifyChain(audit().recordsDir);
    expect(report.break).toBeUndefined();
    expect(report.lines).toBeGreaterThanOrEqual(recordsBefore + flows);
  });
});
