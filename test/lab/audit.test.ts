/**
 * Issue 16's flow records, against the real programs: `ticrypt-net backend
 * serve --audit` (built CLI) in a "backend" namespace runs Debian's ulogd2,
 * which reads conntrack end events and NFLOG refusals; the service turns its
 * output into audit records (the hash-chained day files of the audit store). A secure "VM" namespace reaches
 * a server in the internet namespace on its allow-list, is refused another
 * port, and a client on the internet reaches the VM's port 22 through its
 * SSH forward. Each produces one record with the VM's identity, and byte
 * counts that agree with what the client and server moved. The backend's
 * conntrack timeouts after a close are cut to 1 s in the lab; the end event
 * still waits for conntrack's garbage collector to reach the expired entry,
 * which on an idle table takes up to about a minute (`conntrack -L` hides the
 * entry at once), so records are awaited up to 100 s.
 *
 *     vm a (1081) ── OVS bridge <p>br ── g1 ─ backend ── up 203.0.113.1 ═══ eth0 internet
 *                                                               198.51.100.1    198.51.100.10 (server), 203.0.113.50 (ssh client)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/backend/audit/verify.js';
import { runningUlogd } from '../../src/backend/audit/ulogd-process.js';
import { AuditLab } from './audit-lab.js';
import { labUuid, UPLINK_IPS } from './backend-lab.js';
import { runPrefix } from './names.js';
import { labAvailable, programsAvailable } from './prereq.js';
import { CLI } from './service.js';

const available =
  labAvailable('ovs-vsctl', 'nft', 'dnsmasq', 'conntrack', 'ip', 'ethtool', 'socat') && programsAvailable('ulogd');
const SERVER = '198.51.100.10';
const CLIENT = '203.0.113.50';
const BACKEND = UPLINK_IPS[0];
const VM_A = { network: 'secure', mac: '52:54:00:a0:d1:01', vm: labUuid(0xad1) };

/**
 * Conntrack counts IP bytes: the payload plus headers (IPv4 20 + TCP 20-60 per segment). A counted packet
 * may be a GRO aggregate of several segments, so the bound allows 5% of the payload for their headers too.
 */
const HEADER_MAX = 80;
const atMost = (payload: number, packets: number) => Math.ceil(payload * 1.05) + HEADER_MAX * packets;

describe.skipIf(!available)('flow audit: records from ulogd2 through the service (lab)', { timeout: 150_000 }, () => {
  const p = runPrefix();
  let built: AuditLab<'a'> | undefined;
  let ip = '';
  let sshPort = 0;

  const audit = (): AuditLab<'a'> => {
    if (built === undefined) throw new Error('the lab was not built');
    return built;
  };
  const lab = () => audit().lab;
  const files = () => audit().files;
  const records = () => audit().records();
  const waitFor: AuditLab<'a'>['waitFor'] = (what, find, ms) => audit().waitFor(what, find, ms);
  const metrics = () => audit().metrics();

  /** A server in `ns` on address:port that sends `reply` bytes, then reads to the end (forked per connection). */
  function server(ns: string, address: string, port: number, reply: number) {
    audit().spawn(ns, 'socat', [
      `TCP-LISTEN:${port},bind=${address},reuseaddr,fork`,
      `SYSTEM:head -c ${reply} /dev/zero; cat >/dev/null`,
    ]);
  }

  /** Send `bytes` from `ns` to host:port, read until the server closes: the bytes received, as the client counts them. */
  async function client(ns: string, host: string, port: number, bytes: number): Promise<number> {
    const { stdout } = await execa('ip', [
      ...['netns', 'exec', ns, 'sh', '-c'],
      `head -c ${bytes} /dev/zero | socat -t 5 - TCP:${host}:${port},connect-timeout=3 | wc -c`,
    ]);
    return Number(stdout.trim());
  }

  beforeAll(async () => {
    built = await AuditLab.create(p, {
      site: {
        networks: {
          secure: { preset: 'secure', ssh: { ports: '22100-22109', sources: ['203.0.113.0/24'] } },
        },
      },
      vms: { a: VM_A },
      internet: [`${SERVER}/24`, `${CLIENT}/24`],
      tokens: { 'kvm-1': [], ops: ['--admin'], prometheus: ['--metrics'] },
    });
    await built.startService();
    const { ip: address, json } = await built.registerVm('a');
    ip = address;
    sshPort = Number(json.ssh?.port ?? 0);
    await built.lab.allow('a', [{ address: SERVER, protocol: 'tcp', ports: 5001 }]);
    server(built.lab.internet.name, SERVER, 5001, 30_000);
    server(built.lab.vm.a.name, '0.0.0.0', 22, 20_000);
    await sleep(300);
  });

  afterAll(async () => {
    await built?.remove();
  });

  it('puts an allowed connection on record with the VM identity, the admitting entry and both byte counts', async () => {
    const received = await client(lab().vm.a.name, SERVER, 5001, 100_000);
    expect(received).toBe(30_000);
    const flow = await waitFor('flow record to 5001', (all) =>
      all.find((r) => r.kind === 'flow' && r.dst.port === 5001),
    );
    if (flow.kind !== 'flow') throw new Error('not a flow');
    expect(flow.vm).toEqual({ uuid: VM_A.vm, name: 'vm-a', mac: VM_A.mac, ip, network: 'secure', host: 'kvm-1' });
    expect(flow).toMatchObject({ proto: 'tcp', src: { ip }, dst: { ip: SERVER, port: 5001 } });
    expect(flow.admittedBy).toEqual({ kind: 'allow', entry: `${SERVER} tcp 5001` });
    // Conntrack counts IP bytes: the payload plus one header per packet.
    expect(flow.bytes.out).toBeGreaterThanOrEqual(100_000);
    expect(flow.bytes.out).toBeLessThanOrEqual(atMost(100_000, flow.packets.out));
    expect(flow.bytes.in).toBeGreaterThanOrEqual(received);
    expect(flow.bytes.in).toBeLessThanOrEqual(atMost(received, flow.packets.in));
    expect(Date.parse(flow.end)).toBeGreaterThanOrEqual(Date.parse(flow.start));
  });

  it('puts a refused connection on record with the VM identity and the reason', async () => {
    const refusedBefore = (await records()).filter((r) => r.kind === 'refused').length;
    // Positive control: the port is refused by the table (nothing reaches a server there).
    expect(await client(lab().vm.a.name, SERVER, 5002, 10)).toBe(0);
    const refused = await waitFor('refused record', (all) =>
      all.filter((r) => r.kind === 'refused').length > refusedBefore
        ? all.find((r) => r.kind === 'refused' && r.dst.port === 5002)
        : undefined,
    );
    expect(refused).toMatchObject({
      kind: 'refused',
      reason: 'not-allowed',
      vm: { uuid: VM_A.vm, name: 'vm-a', mac: VM_A.mac, ip, network: 'secure', host: 'kvm-1' },
      proto: 'tcp',
      src: { ip },
      dst: { ip: SERVER, port: 5002 },
    });
  });

  it('puts an SSH session through the forward on record, the VM answering', async () => {
    expect(sshPort).toBeGreaterThan(0);
    const received = await client(lab().internet.name, BACKEND, sshPort, 50_000);
    expect(received).toBe(20_000);
    const flow = await waitFor('ssh flow record', (all) =>
      all.find((r) => r.kind === 'flow' && r.admittedBy.kind === 'ssh'),
    );
    if (flow.kind !== 'flow') throw new Error('not a flow');
    expect(flow.vm).toMatchObject({ uuid: VM_A.vm, mac: VM_A.mac, ip });
    expect(flow).toMatchObject({ src: { ip: CLIENT }, dst: { ip, port: 22 } });
    expect(flow.admittedBy).toEqual({ kind: 'ssh', entry: `ssh port ${sshPort}` });
    expect(flow.bytes.out).toBeGreaterThanOrEqual(received);
    expect(flow.bytes.out).toBeLessThanOrEqual(atMost(received, flow.packets.out));
    expect(flow.bytes.in).toBeGreaterThanOrEqual(50_000);
    expect(flow.bytes.in).toBeLessThanOrEqual(atMost(50_000, flow.packets.in));
    const text = await metrics();
    expect(text).toMatch(/ticrypt_audit_records_total\{kind="flow"\} [1-9]/);
    expect(text).toMatch(/ticrypt_audit_nflog_drops_total 0/);
    expect(text).toMatch(/ticrypt_audit_logger_up 1/);
  });

  it('loses no record while the service is down: ulogd keeps writing, the restarted service resumes at its offset', async () => {
    const before = (await records()).filter((r) => r.kind === 'flow').length;
    const first = lab().services.at(-1);
    await first?.stop();
    // Two connections while the service is away (ulogd, started by it, keeps running).
    for (const bytes of [70_000, 80_000]) expect(await client(lab().vm.a.name, SERVER, 5001, bytes)).toBe(30_000);
    await sleep(3000);
    await lab().startService();
    const flows = await waitFor('both flow records after the restart', (all) => {
      const found = all.filter((r) => r.kind === 'flow');
      return found.length >= before + 2 ? found : undefined;
    });
    // Each exactly once (nothing skipped, nothing read twice); conntrack may end them in either order.
    expect(flows.length).toBe(before + 2);
    const late = flows
      .slice(before)
      .map((r) => (r.kind === 'flow' ? r.bytes.out : 0))
      .sort((x, y) => x - y);
    expect(late[0]).toBeGreaterThanOrEqual(70_000);
    expect(late[0]).toBeLessThan(80_000);
    expect(late[1]).toBeGreaterThanOrEqual(80_000);
    // The day files the service wrote across its two runs are one whole chain.
    const report = await verifyChain(audit().recordsDir);
    expect(report.break).toBeUndefined();
    expect(report.lines).toBeGreaterThanOrEqual(before + 2);
  });
  // Issue 16 point 2, the logger restarted: conntrack (nf_conntrack_events=1) sends a flow's end event to whatever
  // listens when it ends, so a flow open across a restart of ulogd needs no dump at start; a flow that ends while
  // no ulogd listens is dropped by the kernel (ctnetlink reports it delivered), and the service counts the outage.
  it('records a flow open across a restart of ulogd, and counts the outage in which another flow ended unrecorded', async () => {
    const pidFile = files().pid;
    const old = await runningUlogd(pidFile);
    expect(old, 'ulogd runs').toBeDefined();
    const lostDown = async () =>
      Number(/^ticrypt_audit_lost_total\{how="logger-down"\} (\d+)$/m.exec(await metrics())?.[1] ?? Number.NaN);
    const downBefore = await lostDown();
    // Two connections held open (the client sends after a pause): A across the outage, B ended during it.
    const held = (port: number, seconds: number) =>
      execa('ip', [
        ...['netns', 'exec', lab().vm.a.name, 'sh', '-c'],
        `(sleep ${seconds}; head -c 1000 /dev/zero) | socat -t 5 - TCP:${SERVER}:5001,sourceport=${port},reuseaddr | wc -c`,
      ]);
    const a = held(40010, 8);
    const b = held(40011, 30);
    await sleep(1000);
    const killedAt = Date.now();
    process.kill(old!, 'SIGKILL');
    // B ends now, while no logger listens (its end event goes nowhere); positive control: it was there.
    const deleted = await lab().backend.run('conntrack', ['-D', '-p', 'tcp', '--orig-port-src', '40011']);
    expect(deleted.stderr).toMatch(/1 flow entries have been deleted/);
    // The service finds the logger gone within a poll and starts another.
    let now: number | undefined;
    for (let i = 0; i < 100 && (now === undefined || now === old); i += 1) {
      await sleep(100);
      now = await runningUlogd(pidFile);
    }
    expect(now, 'a new ulogd').toBeDefined();
    expect(now).not.toBe(old);
    const restartedAt = Date.now();
    // A ends after the new logger runs: its record comes, with the bytes both ways.
    expect(Number((await a).stdout.trim())).toBe(30_000);
    const flowA = await waitFor('the record of the flow open across the logger restart', (all) =>
      all.find((r) => r.kind === 'flow' && r.src.port === 40010),
    );
    if (flowA.kind !== 'flow') throw new Error('not a flow');
    expect(Date.parse(flowA.start)).toBeLessThan(killedAt);
    expect(Date.parse(flowA.end)).toBeGreaterThan(restartedAt - 1000);
    expect(flowA.bytes.in).toBeGreaterThanOrEqual(30_000);
    expect(flowA.bytes.out).toBeGreaterThanOrEqual(1000);
    // B (started before the kill) has no record: the loss is real, and it is counted.
    b.kill('SIGKILL');
    expect(
      (await records()).filter((r) => r.kind === 'flow' && r.src.port === 40011 && Date.parse(r.start) < killedAt),
    ).toEqual([]);
    expect(await lostDown()).toBe(downBefore + 1);
    const seconds = Number(/^ticrypt_audit_logger_down_seconds_total (\S+)$/m.exec(await metrics())?.[1]);
    console.log(`logger outage: ulogd ${old} killed, ${now} started by the service; ${seconds} s counted down`);
    expect(seconds).toBeGreaterThan(0);
    // From the last sighting (a poll, about 1 s apart) to the new logger: not since the service started.
    expect(seconds).toBeLessThan((Date.now() - killedAt) / 1000 + 5);
    // doctor --role backend shows it from the service's loss ledger.
    const doctor = await execa(
      process.execPath,
      [
        ...[CLI, 'doctor', '--role', 'backend', '--site', lab().paths.site, '--netns', lab().backend.name],
        ...['--state-dir', lab().paths.state, '--no-service', '--json'],
      ],
      { reject: false },
    );
    const results = (JSON.parse(doctor.stdout) as { results: { id: string; status: string; message: string }[] })
      .results;
    expect(results.find((r) => r.id === 'audit.losses')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('1 logger outage(s)'),
    });
    expect(results.find((r) => r.id === 'audit.logger')?.status).toBe('ok');
  });
});
