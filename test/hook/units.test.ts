import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAnswer } from '../../src/hook/agent/client.js';
import { hookConfigTemplate, parseHookConfigText } from '../../src/hook/setup/config.js';
import type { HookConfig } from '../../src/hook/setup/config-types.js';
import { readToken } from '../../src/hook/agent/environment.js';
import { scanDomainXml, scanPortHookData } from '../../src/hook/agent/domain-scan.js';
import type { HookEvent } from '../../src/hook/agent/events.js';
import { nextGeneration, readGeneration } from '../../src/hook/agent/generation.js';
import { tryLock } from '../../src/hook/agent/lock.js';
import { apiVmName, managedNics } from '../../src/hook/agent/nics.js';
import { Spool } from '../../src/hook/agent/spool.js';
import { scanXml } from '../../src/hook/agent/xml-scan.js';
import { parseDomainXml } from '../../src/libvirt/domain-nics.js';
import { arbMac } from '../support/arbitraries.js';
import { domainXml, portHookData, testVm } from './support.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tn-hook-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const config: HookConfig = {
  hostId: 'kvm-1',
  backend: { url: 'http://127.0.0.1:1', tokenFile: '/nonexistent' },
  networks: [
    { name: 'secure', bridge: 'br-secure', requireRegistration: true },
    { name: 'service', requireRegistration: false },
  ],
  timeouts: { requestMs: 500, hookMs: 1000 },
  spoolDir: '/nonexistent',
  syslog: false,
};

describe('apiVmName', () => {
  it.each([
    ['vm-1', 'vm-1'],
    ['a.b+c:d@e_f-9', 'a.b+c:d@e_f-9'],
    [undefined, 'unnamed'],
    ['', 'unnamed'],
  ])('%j → %j', (name, expected) => expect(apiVmName(name)).toBe(expected));

  it('maps any other name to a valid, distinct one', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 300, unit: 'grapheme' }),
        fc.string({ minLength: 1 }),
        (a, b) => {
          const name = apiVmName(a);
          expect(name).toMatch(/^[A-Za-z0-9_.+:@-]{1,128}$/);
          if (a !== b && !/^[A-Za-z0-9_.+:@-]{1,128}$/.test(a)) expect(name).not.toBe(apiVmName(b));
        },
      ),
    );
  });
});

describe('managedNics', () => {
  it('selects by network, else by bridge; reports a managed NIC without MAC or a domain without UUID', () => {
    const uuid = '0B1D2C3E-0000-4000-8000-000000000007';
    const { nics, problems } = managedNics(
      {
        name: 'vm',
        uuid,
        nics: [
          { network: 'secure', mac: '52:54:00:00:00:01' },
          { network: 'default', mac: '52:54:00:00:00:02', bridge: 'br-secure' },
          { bridge: 'br-secure', mac: '52:54:00:00:00:03' },
          { network: 'service' },
          { network: 'secure', mac: '52:54:00:00:00:01' },
          { bridge: 'virbr0', mac: '52:54:00:00:00:05' },
        ],
      },
      config,
    );
    expect(nics.map((n) => [n.nic.network, n.nic.mac, n.nic.vmUuid])).toEqual([
      ['secure', '52:54:00:00:00:01', uuid.toLowerCase()],
      ['secure', '52:54:00:00:00:03', uuid.toLowerCase()],
    ]);
    expect(problems.map((p) => p.message)).toEqual([
      'interface 4 of vm=vm on network=service has no valid unicast MAC: cannot register it',
    ]);
    expect(
      managedNics({ name: 'vm', nics: [{ network: 'secure', mac: '52:54:00:00:00:01' }] }, config).problems[0]?.message,
    ).toBe(
      'interface 1 of vm=vm on network=secure (mac=52:54:00:00:00:01): the domain has no valid <uuid>, found null',
    );
  });
});

describe('scanDomainXml reads what parseDomainXml reads', () => {
  const arbNic = fc.record({
    kind: fc.constantFrom('network', 'bridge', 'nomac', 'badmac'),
    network: fc.constantFrom('secure', 'service', 'default'),
    mac: arbMac,
  });
  const arbName = fc
    .string({ minLength: 1, maxLength: 20 })
    .filter((s) => s.trim() === s && [...s].every((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) < 0xd800));
  const esc = (s: string) =>
    s
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/'/g, '&apos;')
      .replace(/"/g, '&quot;');
  it('for random domains, in both forms, with comments, entities and either quote', () => {
    fc.assert(
      fc.property(
        arbName,
        fc.array(arbNic, { maxLength: 5 }),
        fc.boolean(),
        fc.boolean(),
        (name, nics, live, double) => {
          const q = double ? '"' : "'";
          const interfaces = nics.map((n) => {
            const mac =
              n.kind === 'nomac' ? '' : `<mac address=${q}${n.kind === 'badmac' ? '01:00:5e:00:00:01' : n.mac}${q}/>`;
            return n.kind === 'bridge'
              ? `<interface type='bridge'>${mac}<source bridge=${q}br-${n.network}${q}/></interface>`
              : `<interface type='${live ? 'bridge' : 'network'}'>\n  ${mac}<!-- c -->\n  <source network=${q}${n.network}${q}${live ? ` bridge='br-${n.network}'` : ''}/><target dev='vnet0'/></interface>`;
          });
          const xml = `<?xml version="1.0"?>\n<domain type='qemu'>\n<name>${esc(name)}</name>\n<uuid>0b1d2c3e-0000-4000-8000-000000000007</uuid><!-- <devices/> -->\n<devices>${interfaces.join('\n')}<disk type='file'/></devices></domain>`;
          const reference = parseDomainXml(xml);
          const scanned = scanDomainXml(xml);
          expect(scanned.name).toBe(reference.name);
          expect(scanned.uuid).toBe(reference.uuid);
          expect(scanned.nics).toEqual(
            reference.nics.map((n) => ({
              ...(n.mac === undefined ? {} : { mac: n.mac }),
              ...(n.network === undefined ? {} : { network: n.network }),
              ...(n.bridge === undefined ? {} : { bridge: n.bridge }),
            })),
          );
        },
      ),
    );
  });

  it('reads the test domains and port data the same way', () => {
    const vm = testVm('vm-x');
    for (const form of ['live', 'configured'] as const) {
      const xml = domainXml(vm, form);
      expect(scanDomainXml(xml).nics.map((n) => n.mac)).toEqual(parseDomainXml(xml).nics.map((n) => n.mac));
    }
    expect(scanPortHookData(portHookData(vm), 'x')).toEqual({
      name: 'vm-x',
      uuid: vm.uuid,
      nics: [{ mac: vm.nics[0]!.mac, network: 'secure', bridge: 'br-secure' }],
    });
  });

  it('throws only XmlParseError, whatever the input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.constantFrom(
            '<domain>',
            '<a></b>',
            '<domain><devices>',
            '<domain/><x/>',
            '<!DOCTYPE x><domain/>',
            '<domain a="1" a="2"/>',
            '<domain>&bogus;</domain>',
            '<domain>a & b</domain>',
          ),
        ),
        (text) => {
          try {
            scanDomainXml(text);
          } catch (error) {
            expect((error as { code?: string }).code).toBe('E_XML_PARSE');
          }
        },
      ),
    );
  });

  it.each([
    ['<domain><name>a</name>', 'expected well-formed XML, found an unclosed <domain> at line 1'],
    ['<domain></devices>', 'expected well-formed XML, found </devices> closing <domain> at line 1'],
    ['<network/>', 'expected a <domain> root element, found <network>'],
    ['<domain/><domain/>', 'expected well-formed XML, found a second root element at line 1'],
    ['<domain>\n<name>&nbsp;</name></domain>', 'expected well-formed XML, found an unknown entity &nbsp; at line 2'],
    ['<!DOCTYPE domain><domain/>', 'expected well-formed XML, found a DOCTYPE or declaration (not accepted) at line 1'],
  ])('%j: %s', (xml, reason) => {
    expect(() => scanXml(xml, 'domain', 'domain XML')).toThrow(`Cannot parse domain XML: ${reason}`);
  });

  it('decodes entities and CDATA', () => {
    expect(scanXml("<d a='&lt;&#65;&#x42;'><![CDATA[<x>]]> &amp; </d>", 'd', 'd')).toMatchObject({
      attrs: new Map([['a', '<AB']]),
      text: '<x> &',
    });
  });
});

describe('generation', () => {
  it('increases strictly, survives a lost state file, and a clock stepped back', () => {
    let clock = 1_000_000;
    const a = nextGeneration(dir, () => clock);
    const b = nextGeneration(dir, () => clock);
    expect(b).toBe(a + 1);
    clock = 5;
    const c = nextGeneration(dir, () => clock);
    expect(c).toBe(b + 1);
    expect(readGeneration(dir)).toBe(c);
    // A reboot (another boot id) or a torn state file: the fsynced ceiling, ten minutes ahead, is the floor.
    writeFileSync(join(dir, 'generation'), '');
    const d = nextGeneration(dir, () => clock);
    expect(d).toBeGreaterThan(c + 599e6);
    const [, , boot] = readFileSync(join(dir, 'generation'), 'utf8').split(' ');
    writeFileSync(join(dir, 'generation'), `${d} ${d + 10} another-boot-${boot}`);
    expect(nextGeneration(dir, () => clock)).toBeGreaterThan(d + 599e6);
  });

  it('uses the wall clock in microseconds, below 2^53', () => {
    const g = nextGeneration(dir);
    expect(Math.abs(g / 1000 - Date.now())).toBeLessThan(5000);
    expect(Number.isSafeInteger(g)).toBe(true);
  });
});

describe('lock', () => {
  it('is exclusive, and breaks a lock whose owner is dead', () => {
    const path = join(dir, 'x.lock');
    const release = tryLock(path);
    expect(release).toBeDefined();
    expect(tryLock(path)).toBeUndefined();
    release!();
    writeFileSync(path, '999999999');
    expect(tryLock(path)).toBeDefined();
  });
});

describe('spool', () => {
  const event = (generation: number, op: HookEvent['op'], mac = '52:54:00:00:00:01'): HookEvent => ({
    op,
    generation,
    cause: 'test',
    nic: { vmUuid: '0b1d2c3e-0000-4000-8000-000000000007', vmName: 'vm', mac, network: 'secure' },
  });
  it('lists in generation order and sets unreadable entries aside', () => {
    const spool = new Spool(dir);
    spool.append(event(20, 'deregister'));
    spool.append(event(3, 'register', '52:54:00:00:00:02'));
    spool.append(event(10, 'register'));
    writeFileSync(join(spool.events, '0000000000000001-525400000001-secure-register.json'), '{broken');
    expect(spool.list().map((e) => [e.event.generation, e.event.op])).toEqual([
      [3, 'register'],
      [10, 'register'],
      [20, 'deregister'],
    ]);
    expect(
      readFileSync(join(spool.failed, '0000000000000001-525400000001-secure-register.json.reason'), 'utf8'),
    ).toMatch(/unreadable entry/);
    expect([...spool.pendingKeys()].sort()).toEqual(['secure/52:54:00:00:00:01', 'secure/52:54:00:00:00:02']);
  });

  it('never writes through a symlink planted where it writes', () => {
    const spool = new Spool(dir);
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'untouched');
    mkdirSync(spool.events, { recursive: true });
    const name = '0000000000000005-525400000001-secure-register.json';
    symlinkSync(victim, join(spool.events, `.${name}.${process.pid}.tmp`));
    spool.append(event(5, 'register'));
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
    expect(spool.list().map((e) => e.event.generation)).toEqual([5]);
    expect(lstatSync(join(spool.events, name)).isSymbolicLink()).toBe(false);
  });
});

describe('config', () => {
  it('takes plain http only with insecure: true', () => {
    const text = 'hostId: kvm-1\nbackend: {url: http://x, tokenFile: /t, insecure: true}\nnetworks: [{name: secure}]';
    expect(parseHookConfigText(text, 'f').backend).toEqual({ url: 'http://x', tokenFile: '/t', insecure: true });
  });

  it('refuses a token file group or others may read, and one behind a symlink', () => {
    const tokenFile = join(dir, 'host.token');
    writeFileSync(tokenFile, 'kvm-1.secret\n', { mode: 0o644 });
    chmodSync(tokenFile, 0o644);
    const withToken = { ...config, backend: { ...config.backend, tokenFile } };
    expect(() => readToken(withToken)).toThrow(
      `backend.tokenFile: expected a token file only its owner may read (chmod 600), found mode 0644 on ${tokenFile}`,
    );
    chmodSync(tokenFile, 0o600);
    expect(readToken(withToken)).toBe('kvm-1.secret');
    symlinkSync(tokenFile, join(dir, 'link.token'));
    expect(() => readToken({ ...config, backend: { ...config.backend, tokenFile: join(dir, 'link.token') } })).toThrow(
      /expected a readable token file, found ELOOP/,
    );
  });

  it('the template is valid', () => {
    expect(parseHookConfigText(hookConfigTemplate('kvm-07'), 't')).toMatchObject({
      hostId: 'kvm-07',
      networks: [
        { name: 'secure', bridge: 'br-secure', requireRegistration: false },
        { name: 'service' },
        { name: 'datain' },
      ],
      timeouts: { requestMs: 1500, hookMs: 2000 },
    });
  });

  it.each([
    [
      'hostId: kvm-1\nbackend: {url: ftp://x, tokenFile: t}\nnetworks: [{name: secure}]',
      'backend.url: expected an http(s) URL like https://198.18.0.1:8443, found "ftp://x"; backend.tokenFile: expected an absolute path, found "t"',
    ],
    [
      'hostId: kvm-1\nbackend: {url: https://x, tokenFile: /t}\nnetworks: [{name: secure}, {name: secure}]',
      'networks[1].name: expected a name no other network has, found "secure" again (also networks[0])',
    ],
    [
      'hostId: kvm-1\nbackend: {url: https://x, tokenFile: /t}\nnetworks: [{name: secure}]\ntimeouts: {requestMs: 3000}',
      'timeouts.requestMs: expected less than timeouts.hookMs (2000), found 3000',
    ],
    [
      'hostId: kvm-1\nbackend: {url: https://x, tokenFile: /t}\nnetworks: [{name: secure, require-registration: true}]',
      'networks[0].require-registration: unknown field',
    ],
    [
      'hostId: kvm-1\nbackend: {url: http://x, tokenFile: /t}\nnetworks: [{name: secure}]',
      'backend.url: expected an https URL (plain http only with backend.insecure: true), found "http://x"',
    ],
  ])('%j', (text, message) => {
    expect(() => parseHookConfigText(text, 'f')).toThrow(message);
  });
});

describe('parseAnswer', () => {
  it('reads Content-Length, chunked and to-the-end bodies', () => {
    expect(parseAnswer(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{"status":1}\nextra'))).toEqual({
      status: 200,
      body: { status: 1 },
    });
    expect(
      parseAnswer(
        Buffer.from('HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'),
      ),
    ).toEqual({ status: 409, body: { a: 1 } });
    expect(parseAnswer(Buffer.from('HTTP/1.0 500 x\r\n\r\nnot json'))).toEqual({ status: 500, body: undefined });
    expect(() => parseAnswer(Buffer.from('garbage'))).toThrow('malformed HTTP answer');
  });
});

describe('flushSpool on a host that never spooled', () => {
  it('creates the spool directory instead of failing on its lock', async () => {
    const { mkdtempSync, existsSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { Spool } = await import('../../src/hook/agent/spool.js');
    const { flushSpool } = await import('../../src/hook/agent/deliver.js');
    const base = mkdtempSync(join(tmpdir(), 'tn-spool-'));
    try {
      const spool = new Spool(join(base, 'never', 'created'));
      const context = { spool, log: () => {}, deadline: Date.now() + 1000 } as unknown as Parameters<
        typeof flushSpool
      >[0];
      const result = await flushSpool(context);
      expect(result).toMatchObject({ delivered: 0, remaining: 0, busy: false });
      expect(existsSync(spool.dir)).toBe(true);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
