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
 * The API runs in a child process (`--serve`), as the backend would on its own machine.
 *
 *     npm run build && node --import tsx bench/hook.ts [SAMPLES]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { bundleHook, domainXml, hostRig, listeningBackend, removeRig, testVm } from '../test/hook/support.js';

const SAMPLES = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 40);

// `--serve`: the real API on loopback, in its own process (so its work does not share the bench's event loop).
if (process.argv.includes('--serve')) {
  const served = await listeningBackend();
  process.stdout.write(`${JSON.stringify({ port: served.port, token: served.backend.tokens.host })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void served.close().then(() => process.exit(0)));
  await new Promise(() => {});
}

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
const serverProcess = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--serve'], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const first = await createInterface({ input: serverProcess.stdout })[Symbol.asyncIterator]().next();
const server = JSON.parse(String(first.value)) as { port: number; token: string };
const rig = hostRig({ hostId: 'kvm-1', token: server.token, backendUrl: `http://127.0.0.1:${server.port}` });
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
  // One traced start: where the time goes inside the hook (ms since the process started).
  const traced = testVm('bench-traced');
  const phases = await new Promise<string>((resolve) => {
    const child = spawn(rig.qemuHook, [traced.name, 'start', 'begin', '-'], {
      env: { LC_ALL: 'C', PATH: '/usr/bin:/bin', TICRYPT_NET_HOOK_TRACE: '1' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', () => resolve(err));
    child.stdin.end(domainXml(traced));
  });
  await time(rig.qemuHook, [traced.name, 'stopped', 'end', '-'], domainXml(traced, 'configured'));
  const answer = await fetch(`http://127.0.0.1:${server.port}/v1/registrations`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  const registered = ((await answer.json()) as { registrations: unknown[] }).registrations.length;
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
  const marks = [...phases.matchAll(/^trace (\S+) ([0-9.]+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  console.log(
    `one traced start, ms since process start: ${marks.map(([label, at], i) => `${label} ${at.toFixed(1)}${i > 0 ? ` (+${(at - marks[i - 1]![1]).toFixed(1)})` : ''}`).join(', ')}`,
  );
} finally {
  removeRig(rig);
  serverProcess.stdin.end();
}
