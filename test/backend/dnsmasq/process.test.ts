import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsmasqProcess, readPidFile, signalPid, stopPid } from '../../../src/backend/dnsmasq/process.js';
import { DnsmasqProcessError } from '../../../src/errors/dnsmasq-process-error.js';
import { labAvailable } from '../../lab/prereq.js';

describe('pid helpers', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ticrypt-pid-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a pid file, and nothing from a missing or bad one', async () => {
    await writeFile(join(dir, 'good.pid'), '1234\n');
    await writeFile(join(dir, 'bad.pid'), 'x\n');
    expect(await readPidFile(join(dir, 'good.pid'))).toBe(1234);
    expect(await readPidFile(join(dir, 'bad.pid'))).toBeUndefined();
    expect(await readPidFile(join(dir, 'missing.pid'))).toBeUndefined();
  });

  it('tells a missing process', async () => {
    expect(signalPid(process.pid, 0)).toBe(true);
    expect(signalPid(2 ** 22 + 1, 0)).toBe(false);
    await stopPid(2 ** 22 + 1);
  });
});

describe.skipIf(!labAvailable('dnsmasq'))('DnsmasqProcess with the real dnsmasq', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ticrypt-dnsmasq-process-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports why dnsmasq would not start', async () => {
    const confFile = join(dir, 'bad.conf');
    await writeFile(confFile, 'port=0\nno-such-option\n');
    const error = await DnsmasqProcess.start({ confFile, pidFile: join(dir, 'bad.pid') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsmasqProcessError);
    expect((error as DnsmasqProcessError).message).toMatch(
      /^dnsmasq failed \(exit 1\) starting with .*bad\.conf: dnsmasq: bad option at line 2 of /,
    );
  });

  it('starts, reloads, stops and restarts a DNS-less, DHCP-less dnsmasq by pid', async () => {
    const confFile = join(dir, 'idle.conf');
    const pidFile = join(dir, 'idle.pid');
    await writeFile(confFile, `port=0\nno-resolv\nno-hosts\npid-file=${pidFile}\nlog-facility=-\n`);
    const logs: string[] = [];
    const first = await DnsmasqProcess.start({ confFile, pidFile, onLog: (line) => logs.push(line) });
    expect(await readPidFile(pidFile)).toBe(first.pid);
    first.reload();
    const second = await first.restart();
    expect(first.running).toBe(false);
    expect(second.pid).not.toBe(first.pid);
    expect(await second.stop()).toEqual({ exitCode: 0, signal: undefined });
    expect(second.running).toBe(false);
    expect(() => second.reload()).toThrow(DnsmasqProcessError);
    expect(logs.some((line) => line.includes('started'))).toBe(true);
  });
});
