import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAvailable } from '../lab/prereq.js';
import {
  bundleHook,
  domainXml,
  hostRig,
  type HostRig,
  listeningBackend,
  placeOn,
  removeRig,
  runHookScript,
  testVm,
} from './support.js';

/** Needs root and no syslog daemon here: the test plays one on /dev/log (a datagram socket, as journald's and rsyslog's are). */
const lab = labAvailable('socat', 'logger') && !existsSync('/dev/log');

describe.skipIf(!lab)('syslog (lab)', () => {
  let server: Awaited<ReturnType<typeof listeningBackend>>;
  let rig: HostRig;
  let received = '';
  let socat: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    bundleHook();
    server = await listeningBackend();
    rig = hostRig({
      hostId: 'kvm-1',
      token: server.backend.tokens.host,
      backendUrl: `http://127.0.0.1:${server.port}`,
    });
    rig.writeConfig({ syslog: true });
    socat = spawn('socat', ['-u', 'UNIX-RECV:/dev/log,unlink-early', 'STDOUT'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    socat.stdout?.on('data', (chunk: Buffer) => (received += chunk.toString()));
    for (let i = 0; i < 50 && !existsSync('/dev/log'); i++) await sleep(20);
  });
  afterAll(async () => {
    if (socat?.pid !== undefined) process.kill(socat.pid, 'SIGTERM');
    rmSync('/dev/log', { force: true });
    removeRig(rig);
    await server.close();
  });

  it('logs each action to syslog too, with VM name and MAC, at daemon facility', async () => {
    const vm = testVm('vm-syslog');
    await placeOn(server.backend, vm, 'kvm-1');
    const start = await runHookScript(rig.qemuHook, [vm.name, 'start', 'begin', '-'], domainXml(vm));
    expect(start).toMatchObject({ code: 0, stdout: '' });
    const mac = vm.nics[0]!.mac!;
    for (let i = 0; i < 50 && !received.includes(mac); i++) await sleep(20);
    // <30> = daemon.info; logger adds the tag and the hook's pid.
    expect(received).toMatch(
      new RegExp(
        `<30>.*ticrypt-net-hook\\[\\d+\\]: qemu start: register vm=vm-syslog mac=${mac} network=secure generation \\d+: registered ip=`,
      ),
    );
  });
});
