import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ticrypt-cli-'));
  await writeFile(
    join(dir, 'site.yaml'),
    'networks:\n  secure: { preset: secure, vlan: 2081, portgroups: [{ name: batch }] }\n',
  );
  await writeFile(
    join(dir, 'bad.yaml'),
    'networks:\n  secure: { preset: secure, vlan: 5000 }\n  service: { preset: service, gateway: 10.0.0.1 }\n',
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('render network', () => {
  it('prints the template for a preset network', async () => {
    const { code, stdout, stderr } = await cli('render', 'network', 'secure');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toBe(await readFile(new URL('../../xml-templates/secure.xml', import.meta.url), 'utf8'));
  });

  it('uses the site file', async () => {
    const { stdout } = await cli('render', 'network', 'secure', '--site', join(dir, 'site.yaml'));
    expect(stdout).toContain('<tag id="2081"/>');
    expect(stdout).toContain('<portgroup name="batch">');
  });

  it('exits 2 naming the networks on an unknown one', async () => {
    expect(await cli('render', 'network', 'nope')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'Unknown network "nope": expected one of secure, service, datain\n',
    });
  });

  it('exits 2 with every site error on stderr', async () => {
    const { code, stdout, stderr } = await cli('render', 'network', 'secure', '--site', join(dir, 'bad.yaml'));
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toBe(
      `Invalid site (2 errors) in ${join(dir, 'bad.yaml')}:\n` +
        '  networks.secure.vlan: expected an integer 1-4094, found 5000\n' +
        '  networks.service.gateway: expected a host address of 192.168.122.0/24 (192.168.122.1-192.168.122.254), found 10.0.0.1\n',
    );
  });

  it('reports errors as JSON with --json', async () => {
    const { code, stderr } = await cli('--json', 'render', 'network', 'secure', '--site', join(dir, 'bad.yaml'));
    expect(code).toBe(2);
    const parsed = JSON.parse(stderr) as { error: { code: string; issues: { path: string }[] } };
    expect(parsed.error.code).toBe('E_SITE_INVALID');
    expect(parsed.error.issues.map((i) => i.path)).toEqual(['networks.secure.vlan', 'networks.service.gateway']);
  });

  it('says so when the site file is missing', async () => {
    const { code, stderr } = await cli('render', 'network', 'secure', '--site', join(dir, 'missing.yaml'));
    expect(code).toBe(2);
    expect(stderr).toContain('(file): expected a readable file, found ENOENT');
  });
});

describe('render interface', () => {
  it('prints an interface on a portgroup', async () => {
    const { code, stdout } = await cli(
      'render',
      'interface',
      '--network',
      'secure',
      '--mac',
      '52:54:00:AA:00:01',
      '--portgroup',
      'batch',
      '--boot',
      '2',
      '--site',
      join(dir, 'site.yaml'),
    );
    expect(code).toBe(0);
    expect(stdout).toContain('<mac address="52:54:00:aa:00:01"/>');
    expect(stdout).toContain('<source network="secure" portgroup="batch"/>');
    expect(stdout).toContain('<tag id="2081"/>');
    expect(stdout).toContain('<boot order="2"/>');
  });

  it('prints JSON with --json', async () => {
    const { stdout } = await cli(
      'render',
      'interface',
      '--network',
      'service',
      '--mac',
      '52:54:00:aa:00:01',
      '--form',
      'bridge',
      '--json',
    );
    const parsed = JSON.parse(stdout) as { xml: string; mac: string };
    expect(parsed.mac).toBe('52:54:00:aa:00:01');
    expect(parsed.xml).toContain('<source bridge="br-service"/>');
  });

  it.each([
    [['--mac', 'zz'], 'Invalid MAC: expected a unicast MAC address like 52:54:00:12:34:56, found "zz"\n'],
    [['--mac', '52:54:00:aa:00:01', '--boot', 'x'], '--boot: expected an integer 1-65535, found "x"\n'],
    [['--mac', '52:54:00:aa:00:01', '--form', 'direct'], "--form: expected 'network' or 'bridge', found \"direct\"\n"],
    [[], "error: required option '--mac <mac>' not specified\n"],
  ])('exits 2 on bad options %j', async (args, stderr) => {
    expect(await cli('render', 'interface', '--network', 'secure', ...args)).toEqual({ code: 2, stdout: '', stderr });
  });
});

describe('render all', () => {
  it('writes every network', async () => {
    const out = join(dir, 'out');
    const { code, stdout } = await cli('render', 'all', '--out', out);
    const names = ['secure', 'service', 'datain'];
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        ...names.map((n) => join(out, 'networks', `${n}.xml`)),
        join(out, 'nft', 'ticrypt.nft'),
        ...names.map((n) => join(out, 'dnsmasq', `${n}.conf`)),
      ]
        .map((path) => `wrote ${path}\n`)
        .join(''),
    );
    expect((await readdir(join(out, 'networks'))).sort()).toEqual(['datain.xml', 'secure.xml', 'service.xml']);
  });
});

describe('validate and schema', () => {
  it('summarizes a valid site', async () => {
    const { code, stdout } = await cli('validate', '--site', join(dir, 'site.yaml'));
    expect(code).toBe(0);
    expect(stdout).toMatch(/valid site "ticrypt", 1 networks, 0 hosts\n {2}secure +secure +br-secure +vlan 2081/);
  });

  it('prints the resolved site as JSON', async () => {
    const { stdout } = await cli('validate', '--site', join(dir, 'site.yaml'), '--json');
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, site: { networks: [{ name: 'secure', vlan: 2081 }] } });
  });

  it('exits 2 on an invalid site', async () => {
    const { code, stderr } = await cli('validate', '--site', join(dir, 'bad.yaml'));
    expect(code).toBe(2);
    expect(stderr).toContain('networks.secure.vlan: expected an integer 1-4094, found 5000');
  });

  it('prints a JSON Schema that names the network fields', async () => {
    const { code, stdout } = await cli('schema');
    expect(code).toBe(0);
    const schema = JSON.parse(stdout) as {
      $schema: string;
      properties: { networks: { additionalProperties: { properties: object } } };
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(schema.properties.networks.additionalProperties.properties)).toEqual(
      expect.arrayContaining([
        'preset',
        'kind',
        'bridge',
        'vlan',
        'uplink',
        'subnet',
        'gateway',
        'dhcp',
        'mtu',
        'egress',
        'dns',
        'portgroups',
      ]),
    );
  });
});

describe('usage', () => {
  it('prints help with every command', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    expect(stdout).toMatchSnapshot();
  });

  it('exits 2 on an unknown command', async () => {
    const { code, stderr } = await cli('rendr');
    expect(code).toBe(2);
    expect(stderr).toContain("error: unknown command 'rendr'");
  });
});
