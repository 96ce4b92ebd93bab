/**
 * Issue 16's "a burst past capacity shows its loss in the counters, not
 * silently", against the real programs (the built CLI's `backend serve
 * --audit` in a "backend" namespace running Debian's ulogd2, as
 * audit.test.ts). A secure "VM" namespace sends a flood of refused UDP
 * packets (to a port its allow-list does not hold) while ulogd is stopped
 * (SIGSTOP: a logger that falls behind, made deterministic; at the table's
 * 50 refusals/s no live ulogd is ever that slow), then ulogd goes on. Every
 * refusal the table counted (`audit_seen_not_allowed_secure`) must be a
 * refused record, a suppressed count, or a counted loss, exactly:
 * records + suppressed + lost == seen. With the default 8 MiB NFLOG buffer
 * the loss is 0; with `--audit-netlink-buffer 4096` the same flood loses
 * refusals, and /metrics and `doctor --role backend` say so. With that
 * buffer, the conntrack end events of 200 connections overrun the reliable
 * event socket: the kernel holds the ended entries and resends, all on record.
 * ulogd's files are rotated every 4 KiB throughout (and once checked mid-traffic).
 *
 *     vm a ── OVS bridge <p>br ── g1 ─ backend ── up ═══ eth0 internet 198.51.100.10
 */
import { mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAudit } from '../../src/backend/audit/query.js';
import { AuditRecord } from '../../src/backend/audit/record.js';
import { auditFiles } from '../../src/backend/audit/service.js';
import { runningUlogd, stopUlogd } from '../../src/backend/audit/ulogd-process.js';
import { refusalCounters } from '../../src/backend/nft/audit.js';
import { API_URL, BackendLab, labUuid } from './backend-lab.js';
import { runPrefix } from './names.js';
import { labAvailable, programsAvailable } from './prereq.js';
import { configure } from './probes.js';
import { CLI } from './service.js';

const available = labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'conntrack', 'ip') && programsAvailable('ulogd');
const SERVER = '198.51.100.10';
const REFUSED_PORT = 5009;
const VM_A = { network: 'secure', mac: '52:54:00:a0:ca:01', vm: labUuid(0xaca) };
const SEEN = refusalCounters('not-allowed', 'secure').seen;
/** Refused packets per flood, and over how long: about 100 + 50/s of them become NFLOG messages (the table's limit). */
const FLOOD = 3000;
const FLOOD_S = 3;
const ROTATE_BYTES = 4096;
/** An allowed port with no server: each connection is a flow the table accepts (its SYN) ended by a RST. */
const ALLOWED_PORT = 5001;

describe.skipIf(!available)('flow audit past capacity: every loss counted (lab)', { timeout: 300_000 }, () => {
  const p = runPrefix();
  let built: BackendLab<'a'> | undefined;
  let recordsDir = '';

  const lab = (): BackendLab<'a'> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const ulogdPid = () => join(lab().paths.state, 'flow-audit', 'ulogd.pid');

  async function metrics(): Promise<string> {
    const response = await fetch(`${API_URL}/metrics`, {
      headers: { authorization: `Bearer ${lab().tokens.prometheus}` },
    });
    return response.text();
  }
  const sumOf = (text: string, pattern: RegExp) =>
    [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1] ?? 0), 0);

  /** What the running service counted: lost refusals (every `how` but logger-down), suppressed, overruns. */
  async function counted(): Promise<{
    lost: Record<string, number>;
    suppressed: number;
    overruns: number;
    nflogDrops: number;
  }> {
    const text = await metrics();
    const lost: Record<string, number> = {};
    for (const m of text.matchAll(/ticrypt_audit_lost_total\{how="([^"]+)"\} (\d+)/g)) lost[m[1]!] = Number(m[2]);
    return {
      lost,
      suppressed: sumOf(text, /ticrypt_audit_suppressed_total\{[^}]*\} (\d+)/g),
      overruns: sumOf(text, /ticrypt_audit_netlink_overruns_total (\d+)/g),
      nflogDrops: sumOf(text, /ticrypt_audit_nflog_drops_total (\d+)/g),
    };
  }

  /** Refused records to the refused port, and suppressed counts, in the store's day files. */
  async function stored(): Promise<{ refused: number; suppressed: number; flows: number }> {
    let flows = 0;
    let refused = 0;
    let suppressed = 0;
    for await (const hit of queryAudit(recordsDir, {})) {
      const parsed = AuditRecord.safeParse(hit.stored.rec);
      if (!parsed.success) continue;
      const r = parsed.data;
      if (r.kind === 'refused' && r.dst?.port === REFUSED_PORT) refused += 1;
      if (r.kind === 'suppressed' && r.reason === 'not-allowed') suppressed += r.count;
      if (r.kind === 'flow' && r.dst.port === ALLOWED_PORT) flows += 1;
    }
    return { refused, suppressed, flows };
  }

  /** `doctor --role backend --json` of the lab's backend: the status of `audit.netlink-drops` and its detail. */
  async function doctorDrops(): Promise<{ status: string; detail: string }> {
    const args = ['doctor', '--role', 'backend', '--site', lab().paths.site, '--netns', lab().backend.name];
    const result = await execa(process.execPath, [CLI, ...args, '--state-dir', lab().paths.state, '--json'], {
      reject: false,
      timeout: 60_000,
    });
    const found = (
      JSON.parse(String(result.stdout)) as { results: { id: string; status: string; detail?: string }[] }
    ).results.find((r) => r.id === 'audit.netlink-drops');
    return { status: found?.status ?? 'absent', detail: JSON.stringify(found) };
  }

  /** `n` UDP packets from the VM to the refused port, spread over `seconds` (in 10 ms rounds). */
  async function flood(n: number, seconds = 0): Promise<void> {
    const rounds = Math.max(1, Math.round(seconds * 100));
    const script = [
      "const s = require('node:dgram').createSocket('udp4');",
      `let left = ${n}; const per = Math.ceil(${n} / ${rounds});`,
      'const round = () => {',
      '  for (let i = 0; i < per && left > 0; i++, left--) ' + `s.send('x', ${REFUSED_PORT}, '${SERVER}');`,
      '  if (left > 0) setTimeout(round, 10); else setTimeout(() => s.close(), 200);',
      '};',
      'round();',
    ].join('\n');
    await lab().vm.a.run(process.execPath, ['-e', script], { timeout: 60_000 });
  }

  /** ulogd's netlink sockets as the kernel shows them (Rmem, Drops), for the log. */
  async function sockets(pid: number): Promise<string> {
    const table = await readFile(`/proc/${pid}/net/netlink`, 'utf8');
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const match = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
      if (match?.[1] !== undefined) inodes.add(match[1]);
    }
    return table
      .split('\n')
      .filter((line) => inodes.has(line.trim().split(/\s+/)[9] ?? ''))
      .map((line) => {
        const f = line.trim().split(/\s+/);
        return `proto ${f[1]} groups ${f[3]} rmem ${f[4]} drops ${f[8]}`;
      })
      .join('; ');
  }

  /**
   * The flood with ulogd stopped, then one more refusal after the rate limit refilled (so a loss at the end of
   * the flood shows as a sequence gap), then wait until records + suppressed + lost account for every refusal
   * the table saw (or 30 s): the increases of each.
   */
  async function floodStalled(): Promise<{
    seen: number;
    refused: number;
    suppressed: number;
    lost: number;
    nflogDrops: number;
  }> {
    const pid = await runningUlogd(ulogdPid());
    if (pid === undefined) throw new Error('ulogd is not running');
    const seenBefore = await lab().counter(SEEN);
    const storedBefore = await stored();
    const countedBefore = await counted();
    const lostOf = (c: Awaited<ReturnType<typeof counted>>) =>
      Object.entries(c.lost).reduce((sum, [how, v]) => (how === 'logger-down' ? sum : sum + v), 0);
    process.kill(pid, 'SIGSTOP');
    try {
      await flood(FLOOD, FLOOD_S);
      await sleep(1500); // the kernel's last NFLOG batch (1 s flush) meets the stopped socket
      console.log(`ulogd stopped: ${await sockets(pid)}`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await sleep(1500);
    await flood(1);
    const deadline = Date.now() + 30_000;
    for (;;) {
      await sleep(1500);
      const seen = (await lab().counter(SEEN)) - seenBefore;
      const now = await stored();
      const c = await counted();
      const result = {
        seen,
        refused: now.refused - storedBefore.refused,
        suppressed: now.suppressed - storedBefore.suppressed,
        lost: lostOf(c) - lostOf(countedBefore),
        nflogDrops: c.nflogDrops - countedBefore.nflogDrops,
      };
      if (result.refused + result.suppressed + result.lost >= seen || Date.now() > deadline) {
        console.log(
          `flood of ${FLOOD + 1} refused packets, ulogd stopped: ${JSON.stringify(result)}; lost by how ${JSON.stringify(c.lost)}`,
        );
        return result;
      }
    }
  }

  beforeAll(async () => {
    recordsDir = await mkdtemp(join(tmpdir(), `ticrypt-${p}-records-`));
    built = await BackendLab.create(p, {
      site: { networks: { secure: { preset: 'secure' } } },
      vms: { a: VM_A },
      internet: [`${SERVER}/24`],
      tokens: { 'kvm-1': [], ops: ['--admin'], prometheus: ['--metrics'] },
      // ulogd's output files rotated every 4 KiB (a few lines): every test here also reads across rotations.
      serveArgs: ['--audit', '--audit-records', recordsDir, '--audit-rotate-bytes', String(ROTATE_BYTES)],
    });
    // A refused connection's entry (RST) ends 1 s after, not 10 s: its end event comes soon.
    await built.backend.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_tcp_timeout_close=1']);
    await built.startService();
    const ip = await built.register('a');
    await configure(built.vm.a, 'eth0', `${ip}/17`, built.network('secure').gateway);
    // Something on the allow-list, so the VM's other traffic is 'not-allowed' (not 'unregistered').
    await built.allow('a', [{ address: SERVER, protocol: 'tcp', ports: ALLOWED_PORT }]);
  });

  afterAll(async () => {
    if (built !== undefined) {
      for (const service of built.services) await service.stop();
      await stopUlogd(auditFiles(join(built.paths.state, 'flow-audit')).pid);
    }
    await built?.remove();
    if (recordsDir !== '') await rm(recordsDir, { recursive: true, force: true });
  });

  it('default buffers: a flood meeting a stalled logger loses no refusal; records + suppressed == seen', async () => {
    const result = await floodStalled();
    // Positive control: the flood was refused (nearly all of it: a few packets may fall before the table) and
    // went past the rate limit.
    expect(result.seen).toBeGreaterThan(FLOOD / 2);
    expect(result.suppressed).toBeGreaterThan(0);
    expect(result.refused).toBeGreaterThan(0);
    expect(result.lost).toBe(0);
    expect(result.nflogDrops).toBe(0);
    expect(result.refused + result.suppressed).toBe(result.seen);
    expect((await doctorDrops()).status).toBe('ok');
  });

  it('a 4 KiB netlink buffer: the same flood loses refusals, counted exactly in /metrics and failed by doctor', async () => {
    for (const service of lab().services) await service.stop();
    await stopUlogd(ulogdPid());
    await lab().startService(20_000, ['--audit-netlink-buffer', '4096']);
    const result = await floodStalled();
    expect(result.seen).toBeGreaterThan(FLOOD / 2);
    expect(result.lost).toBeGreaterThan(0);
    // The kernel's own count of dropped messages (batches of refusals) moved too.
    expect(result.nflogDrops).toBeGreaterThan(0);
    expect(result.refused + result.suppressed + result.lost).toBe(result.seen);
    const doctor = await doctorDrops();
    expect(doctor.status, doctor.detail).toBe('fail');
  });

  it("rotates ulogd's files in the middle of traffic without losing or repeating a line", async () => {
    for (const service of lab().services) await service.stop();
    await stopUlogd(ulogdPid());
    await lab().startService();
    const flowsBefore = await lab().counter('flows_from_vms.secure');
    const seenBefore = await lab().counter(SEEN);
    const storedBefore = await stored();
    const rotationsBefore = sumOf(await metrics(), /ticrypt_audit_rotations_total\{[^}]*\} (\d+)/g);
    const lostBefore = (await counted()).lost;
    // 40 connections and 40 refused packets a second for 5 s, below the refusal limit: lines all the time.
    const script = [
      "const net = require('node:net'); const s = require('node:dgram').createSocket('udp4');",
      'let left = 200;',
      'const round = () => {',
      `  net.connect(${ALLOWED_PORT}, '${SERVER}').on('error', () => undefined);`,
      `  s.send('x', ${REFUSED_PORT}, '${SERVER}');`,
      '  if (--left > 0) setTimeout(round, 25); else setTimeout(() => s.close(), 500);',
      '};',
      'round();',
    ].join('\n');
    await lab().vm.a.run(process.execPath, ['-e', script], { timeout: 60_000 });
    const flows = (await lab().counter('flows_from_vms.secure')) - flowsBefore;
    const seen = (await lab().counter(SEEN)) - seenBefore;
    const deadline = Date.now() + 60_000;
    let now = await stored();
    while (
      (now.flows - storedBefore.flows < flows ||
        now.refused + now.suppressed - storedBefore.refused - storedBefore.suppressed < seen) &&
      Date.now() < deadline
    ) {
      await sleep(1500);
      now = await stored();
    }
    await sleep(3000); // nothing more arrives (no line read twice)
    now = await stored();
    const text = await metrics();
    const rotations = sumOf(text, /ticrypt_audit_rotations_total\{[^}]*\} (\d+)/g) - rotationsBefore;
    console.log(
      `rotation mid-traffic: ${flows} flows accepted, ${now.flows - storedBefore.flows} flow records; ${seen} refusals seen, ${now.refused - storedBefore.refused} refused records + ${now.suppressed - storedBefore.suppressed} suppressed; ${rotations} rotations`,
    );
    // Positive control: traffic went through and the files were rotated many times in its middle.
    expect(flows).toBeGreaterThanOrEqual(150);
    expect(rotations).toBeGreaterThanOrEqual(5);
    expect(now.flows - storedBefore.flows).toBe(flows);
    expect(now.refused + now.suppressed - storedBefore.refused - storedBefore.suppressed).toBe(seen);
    // No new loss (the totals carry the earlier tests' over restarts: the service's loss ledger).
    const lostAfter = (await counted()).lost;
    for (const [how, value] of Object.entries(lostAfter))
      if (how !== 'logger-down') expect(value - (lostBefore[how] ?? 0), `lost by ${how}`).toBe(0);
    // ulogd reopened on SIGHUP (the reader finished each renamed file and removed it), and the files stay small:
    // what is left is at most the threshold plus the lines of one read.
    const dir = join(lab().paths.state, 'flow-audit');
    for (const name of ['flows.ulogd.json', 'refused.ulogd.json']) {
      await expect(stat(join(dir, `${name}.rotated`)), `${name}.rotated`).rejects.toThrow(/ENOENT/);
      expect((await stat(join(dir, name))).size, name).toBeLessThan(ROTATE_BYTES + 64 * 1024);
    }
  });

  // The conntrack side: ulogd's event socket is reliable=1, so the kernel does not drop an end event it cannot
  // deliver: it keeps the ended entry (counted in the table, no longer listed) and sends the event again.
  it('a 4 KiB buffer and a stalled logger: end events overrun, held in the conntrack table, then all on record', async () => {
    for (const service of lab().services) await service.stop();
    await stopUlogd(ulogdPid());
    await lab().startService(20_000, ['--audit-netlink-buffer', '4096']);
    const pid = await runningUlogd(ulogdPid());
    if (pid === undefined) throw new Error('ulogd is not running');
    const flowsBefore = await lab().counter('flows_from_vms.secure');
    const storedBefore = await stored();
    const overrunsBefore = (await counted()).overruns;
    const ct = async (flag: string) => (await lab().backend.run('conntrack', [flag])).stdout;
    let held = 0;
    process.kill(pid, 'SIGSTOP');
    try {
      const script = [
        "const net = require('node:net'); let left = 200;",
        `const round = () => { net.connect(${ALLOWED_PORT}, '${SERVER}').on('error', () => undefined);`,
        '  if (--left > 0) setTimeout(round, 10); };',
        'round(); setTimeout(() => undefined, 3000);',
      ].join('\n');
      await lab().vm.a.run(process.execPath, ['-e', script], { timeout: 60_000 });
      await sleep(4000); // every entry ended (RST, close timeout 1 s)
      const count = Number((await ct('-C')).trim());
      const listed = (await ct('-L')).split('\n').filter((l) => l.includes(`dport=${ALLOWED_PORT}`)).length;
      held = count - listed;
      console.log(`ulogd stopped: conntrack -C ${count}, listed to :${ALLOWED_PORT} ${listed}; ${await sockets(pid)}`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const flows = (await lab().counter('flows_from_vms.secure')) - flowsBefore;
    const deadline = Date.now() + 90_000;
    let now = await stored();
    while (now.flows - storedBefore.flows < flows && Date.now() < deadline) {
      await sleep(2000);
      now = await stored();
    }
    const overruns = (await counted()).overruns - overrunsBefore;
    console.log(
      `stalled logger, 4 KiB event buffer: ${flows} flows, ${held} ended entries held, ${overruns} overruns, ${now.flows - storedBefore.flows} flow records`,
    );
    expect(flows).toBeGreaterThanOrEqual(150);
    // The overrun shows: in the counter, and as entries the table still holds for the logger.
    expect(overruns).toBeGreaterThan(0);
    expect(held).toBeGreaterThan(0);
    expect(now.flows - storedBefore.flows).toBe(flows);
  });
});
