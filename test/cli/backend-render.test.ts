import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEntry, parseEntryArgument } from '../../src/cli/allow.js';
import { cli } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ticrypt-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('render nft and dnsmasq', () => {
  it('prints the empty-state table that replaces only inet ticrypt', async () => {
    const { code, stdout } = await cli('render', 'nft');
    expect(code).toBe(0);
    expect(stdout.split('\n').slice(0, 3)).toEqual([
      'table inet ticrypt {}',
      'delete table inet ticrypt',
      'table inet ticrypt {',
    ]);
  });

  it('prints a network dnsmasq config with paths under --state-dir', async () => {
    const { code, stdout } = await cli('render', 'dnsmasq', 'service', '--state-dir', '/srv/tn');
    expect(code).toBe(0);
    expect(stdout).toContain('dhcp-hostsdir=/srv/tn/dnsmasq/service/hosts\n');
    expect(stdout).toContain('dhcp-range=192.168.122.3,static,255.255.255.0,12h\n');
  });

  it('render all writes XML, the table and every dnsmasq config', async () => {
    const out = join(dir, 'all');
    expect((await cli('render', 'all', '--out', out)).code).toBe(0);
    expect(await readdir(join(out, 'nft'))).toEqual(['ticrypt.nft']);
    expect((await readdir(join(out, 'dnsmasq'))).sort()).toEqual(['datain.conf', 'secure.conf', 'service.conf']);
  });
});

describe('allow entries on the command line', () => {
  it.each([
    ['tcp:203.0.113.10:443', { address: '203.0.113.10', protocol: 'tcp', ports: 443 }],
    ['udp:203.0.113.0/24:5000-5100', { address: '203.0.113.0/24', protocol: 'udp', ports: '5000-5100' }],
    ['icmp:198.51.100.7', { address: '198.51.100.7', protocol: 'icmp' }],
    ['tcp:pypi.org:443', { domain: 'pypi.org', protocol: 'tcp', ports: 443 }],
  ])('%s', (text, body) => expect(parseEntryArgument(text)).toEqual(body));

  it.each([
    { address: '203.0.113.10', protocol: 'tcp', ports: 443 },
    { domain: 'pypi.org', protocol: 'tcp', ports: '8000-8100' },
    { address: '198.51.100.7', protocol: 'icmp' },
  ])('prints %j as it reads it', (body) => {
    expect(parseEntryArgument(formatEntry(body))).toEqual(body);
  });

  it('prints the special-use ranges a domain entry may open', () => {
    const entry = {
      domain: 'intranet.example',
      protocol: 'tcp',
      ports: 443,
      specialRanges: ['10.9.0.0/16', '10.8.0.1'],
    };
    expect(formatEntry(entry)).toBe('tcp:intranet.example:443 special-use:10.9.0.0/16,10.8.0.1');
  });

  it.each(['tcp', 'tcp::443', 'tcp:a:1:2'])('refuses %j', (text) => {
    expect(() => parseEntryArgument(text)).toThrow(/expected PROTO:TARGET\[:PORTS\]/);
  });

  it('says which token file it could not read', async () => {
    const { code, stderr } = await cli(
      'allow',
      'ls',
      '--token-file',
      join(dir, 'none'),
      '--backend',
      'http://127.0.0.1:9',
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/--token-file: expected a readable file with the admin token, found ENOENT/);
  });

  it('reports an unreachable backend as a failure (exit 1)', async () => {
    const file = join(dir, 'token');
    await (await import('node:fs/promises')).writeFile(file, 'ops.x\n');
    const { code, stderr } = await cli(
      'allow',
      'ls',
      '--token-file',
      file,
      '--backend',
      'http://127.0.0.1:9',
      '--timeout',
      '2000',
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/^Backend http:\/\/127\.0\.0\.1:9 unreachable: GET \/v1\/allow-lists: /);
  });
});

describe('backend token', () => {
  it('issues, lists and revokes tokens in a store', async () => {
    const store = join(dir, 'tokens.db');
    const added = await cli('backend', 'token', 'add', 'kvm-01', '--store', store);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^kvm-01\.[A-Za-z0-9_-]{43}\n$/);
    await cli('backend', 'token', 'add', 'ops', '--admin', '--store', store);
    expect((await cli('backend', 'token', 'ls', '--store', store)).stdout).toBe('host\tkvm-01\nadmin\tops\n');
    expect((await cli('backend', 'token', 'revoke', 'kvm-01', '--store', store)).stdout).toBe('revoked kvm-01\n');
    expect((await cli('backend', 'token', 'add', 'bad name', '--store', store)).code).toBe(2);
  });

  it('refuses to serve without TLS unless told', async () => {
    const { code, stderr } = await cli('backend', 'serve', '--store', join(dir, 's.db'), '--state-dir', dir);
    expect(code).toBe(2);
    expect(stderr).toBe('backend serve: expected --tls-cert and --tls-key (or --insecure-http), found neither\n');
  });
});
