/**
 * Live migration with ticrypt-net (issue 15): over N migrations of the real
 * lab guest between two libvirtd hosts on this machine (test/lab/migration-lab.ts,
 * alternating A → B, B → A), the pings lost at 10 ms on the guest's
 * ticrypt-net NIC (pinged from the backend) and on its plain OVS NIC (pinged
 * on a segment ticrypt-net does not manage) in the same migrations, and the
 * time from the destination's resume (libvirt's "Resumed Migrated" event) to
 * the guest's first packet forwarded by the backend after it (an egress TCP
 * stream to a server on the internet, a line every ~10 ms).
 *
 *     npm run bench:migration -- [MIGRATIONS]      (default 6)
 *
 * Needs root and the lab lock (`flock -o /work/lab.lock`); everything it
 * builds is named with a per-run prefix and removed at the end.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { CounterStream } from '../test/lab/counter-stream.js';
import { MigrationLab, PLAIN, SECURE, SERVER, SERVER_PORT } from '../test/lab/migration-lab.js';
import { runPrefix } from '../test/lab/names.js';
import type { LabHost } from '../test/lab/two-libvirtd.js';
import { median } from './netlab.js';

const MIGRATIONS = Number(process.argv[2] ?? 6);
/** The guest's egress stream: a line every 10 ms (as fast as busybox sleep goes under TCG). */
const FAST_LOOP = 'i=0; while :; do echo $i; i=$((i+1)); sleep 0.01; done';

/** Watch `host`'s lifecycle events (of every domain: the guest does not exist there yet); resolves the time (ms) of the first "Resumed Migrated" of `name`. */
function resumedOn(host: LabHost, name: string) {
  // stdbuf: virsh buffers its stdout when it is a pipe, and would print the event only when it exits.
  const child = execa(
    'stdbuf',
    ['-oL', 'virsh', '-q', '-c', host.uri, 'event', '--event', 'lifecycle', '--loop', '--timestamp'],
    { reject: false, buffer: false, stdin: 'ignore' },
  );
  const resumed = new Promise<number>((resolve) => {
    if (!child.stdout) return;
    createInterface({ input: child.stdout }).on('line', (line) => {
      // 2026-12-01 10:00:00.123+0000: event 'lifecycle' for domain 'x': Resumed Migrated
      const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d)(\d\d): .*Resumed Migrated/.exec(line);
      if (m && line.includes(`domain '${name}'`)) resolve(Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`));
      else if (/Resumed/.test(line)) console.log(`(unparsed event line: ${line})`);
    });
  });
  return { resumed, stop: async () => (child.kill('SIGTERM'), await child) };
}

const stats = (values: readonly number[]) =>
  `median ${median(values)} (min ${Math.min(...values)}, max ${Math.max(...values)})`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:migration needs root (the lab)');
  const lab = await MigrationLab.create(runPrefix(), { plainGuest: false });
  let server: CounterStream | undefined;
  try {
    const guest = lab.secure!;
    await lab.lab.place(SECURE.vm, ['kvm-a', 'kvm-b']);
    server = new CounterStream('server', 'ip', [
      ...['netns', 'exec', lab.lab.internet.name, 'socat', '-u', `TCP-LISTEN:${SERVER_PORT},bind=${SERVER},reuseaddr`],
      'STDOUT',
    ]);
    await sleep(300);
    await guest.spawn(`${FAST_LOOP} | nc ${SERVER} ${SERVER_PORT}`, 'egress');
    if (!(await server.advances(20))) throw new Error(`the guest's egress stream did not start: ${server.stderr}`);
    const rows: { dir: string; secure: number; plain: number; jobMs: number; firstMs: number }[] = [];
    let from = lab.two.a;
    for (let i = 0; i < MIGRATIONS; i++) {
      const to = lab.two.other(from);
      const watch = resumedOn(to, guest.name);
      await sleep(300);
      const moved = await lab.migratePinged(guest, from, [
        [lab.lab.backend, guest.ip!],
        [lab.pingerNs!, PLAIN.second],
      ]);
      const resumedAt = await Promise.race([watch.resumed, sleep(5000).then(() => Number.NaN)]);
      await watch.stop();
      await server.advances(20);
      const first = server.values.find((v) => v.at > resumedAt);
      rows.push({
        dir: `${from.name}->${to.name}`,
        secure: moved.counts[0]!.lost,
        plain: moved.counts[1]!.lost,
        jobMs: moved.jobMs,
        firstMs: first === undefined ? Number.NaN : first.at - resumedAt,
      });
      // The source's late stop has run before the next move.
      await lab.released(from, guest.name, moved.started);
      from = to;
    }
    if (!server.consecutive() || server.exitCode !== undefined) {
      throw new Error('the egress stream was cut or restarted during the migrations');
    }
    console.log('migration  job ms  lost (ticrypt-net NIC)  lost (plain NIC)  resume -> first forwarded packet ms');
    for (const r of rows) {
      console.log(
        `${r.dir.padEnd(9)}  ${String(r.jobMs).padStart(6)}  ${String(r.secure).padStart(22)}  ${String(r.plain).padStart(16)}  ${String(r.firstMs).padStart(35)}`,
      );
    }
    const secure = rows.map((r) => r.secure);
    const plain = rows.map((r) => r.plain);
    const first = rows.map((r) => r.firstMs).filter((v) => !Number.isNaN(v));
    const sum = (v: readonly number[]) => v.reduce((x, y) => x + y, 0);
    console.log(`${rows.length} migrations, pings at 10 ms:`);
    console.log(`  lost with ticrypt-net:    ${stats(secure)}, total ${sum(secure)}`);
    console.log(`  lost without (plain NIC): ${stats(plain)}, total ${sum(plain)}`);
    console.log(
      `  ratio with/without: ${(sum(secure) / Math.max(1, sum(plain))).toFixed(2)}; ` +
        `per migration, with minus without: ${stats(rows.map((r) => r.secure - r.plain))}`,
    );
    console.log(`  destination resume -> first packet forwarded by the backend, ms: ${stats(first)}`);
    console.log(`  libvirt job, ms: ${stats(rows.map((r) => r.jobMs))}`);
  } finally {
    await server?.stop();
    await lab.remove();
  }
}

await main();
