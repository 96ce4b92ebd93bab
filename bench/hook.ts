/**
 * What the qemu hook costs libvirt per call, through the installed hook
 * (sh wrapper + bundled Node entry) against the real API on loopback:
 *
 * - an op it does not act on (`prepare`): judged against 5 ms;
 * - `start` and `stopped` with a live backend: judged by their ratio to a bare
 *   `node -e 0` on the same machine, against 1.25.
 *
 * Runs interleave (node -e 0, start, stopped, prepare) so load changes hit all
 * alike; the figures are medians.
 *
 *     npm run build && node --import tsx bench/hook.ts [SAMPLES]
 */
import { spawn } from 'node:child_process';
import { bundleHook, domainXml, hostRig, listeningBackend, removeRig, testVm } from '../test/hook/support.js';

const SAMPLES = Number(process.argv[2] ?? 40);

function time(command: string, args: readonly string[], stdin = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      env: { LC_ALL: 'C', PATH: '/usr/bin:/bin' },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.on('close', (code) =>
      code === 0
        ? resolve(performance.now() - started)
        : reject(new Error(`${command} ${args.join(' ')}: exit ${code}`)),
    );
    child.stdin.end(stdin);
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const p90 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.9)] ?? Number.NaN;

bundleHook();
const server = await listeningBackend();
const rig = hostRig({
  hostId: 'kvm-1',
  token: server.backend.tokens.host,
  backendUrl: `http://127.0.0.1:${server.port}`,
});
try {
  const samples = { node: [] as number[], start: [] as number[], stopped: [] as number[], prepare: [] as number[] };
  // Warm-up: page cache, the config cache, the spool directory.
  for (let i = 0; i < 3; i++) {
    const vm = testVm(`bench-warm-${i}`);
    await time(rig.qemuHook, [vm.name, 'start', 'begin', '-'], domainXml(vm));
    await time(rig.qemuHook, [vm.name, 'stopped', 'end', '-'], domainXml(vm, 'configured'));
  }
  for (let i = 0; i < SAMPLES; i++) {
    const vm = testVm(`bench-${i}`);
    samples.node.push(await time(process.execPath, ['-e', '0']));
    samples.start.push(await time(rig.qemuHook, [vm.name, 'start', 'begin', '-'], domainXml(vm)));
    samples.stopped.push(await time(rig.qemuHook, [vm.name, 'stopped', 'end', '-'], domainXml(vm, 'configured')));
    samples.prepare.push(await time(rig.qemuHook, [vm.name, 'prepare', 'begin', '-'], domainXml(vm, 'configured')));
  }
  const registered = server.backend.store.registrations.list().length;
  if (registered !== 0) throw new Error(`expected every benchmark VM deregistered, found ${registered} registrations`);
  const base = median(samples.node);
  const row = (name: string, values: number[], judged: string) =>
    `${name.padEnd(34)} median ${median(values).toFixed(1).padStart(6)} ms  p90 ${p90(values).toFixed(1).padStart(6)} ms  ${judged}`;
  console.log(`hook cost per call, ${SAMPLES} samples each, interleaved (Node ${process.version})`);
  console.log(row('node -e 0', samples.node, '(baseline)'));
  console.log(
    row(
      'qemu start (register, live API)',
      samples.start,
      `ratio ${(median(samples.start) / base).toFixed(2)} (goal <= 1.25)`,
    ),
  );
  console.log(
    row(
      'qemu stopped (deregister, live API)',
      samples.stopped,
      `ratio ${(median(samples.stopped) / base).toFixed(2)} (goal <= 1.25)`,
    ),
  );
  console.log(row('qemu prepare (not acted on)', samples.prepare, `(goal <= 5 ms)`));
} finally {
  removeRig(rig);
  await server.close();
}
