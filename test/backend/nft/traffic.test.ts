import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nftRunner, renderChange, renderRuleset } from '../../../src/backend/nft/index.js';
import type { AllowEntry } from '../../../src/protocol/api.js';
import { defaultSite } from '../../../src/site/parse.js';
import { Netns } from '../../lab/netns.js';
import { runPrefix } from '../../lab/names.js';
import { labAvailable } from '../../lab/prereq.js';
import { registration } from './fixtures.js';

const lab = labAvailable('nft', 'ip', 'bash', 'timeout');
const site = defaultSite();

/**
 * A VM namespace behind a gateway namespace behind an "internet" namespace.
 * A TCP connect to a closed port is refused when the SYN gets through and
 * times out when the gateway drops it: no server needed.
 */
describe.skipIf(!lab)('real traffic through table inet ticrypt', () => {
  const prefix = runPrefix();
  const spaces: Netns[] = [];
  let gw: Netns;
  let vm: Netns;
  const r = { ...registration(7), ip: '192.168.129.7' };
  const entries: AllowEntry[] = [
    { type: 'address', address: '203.0.113.10', protocol: 'tcp', ports: { from: 443, to: 443 } },
    { type: 'address', address: '198.51.100.0/22', protocol: 'tcp', ports: { from: 1000, to: 1100 } },
  ];
  const ctx = { site };

  beforeAll(async () => {
    gw = await Netns.create(`${prefix}-gw`);
    vm = await Netns.create(`${prefix}-vm`);
    const net = await Netns.create(`${prefix}-net`);
    spaces.push(gw, vm, net);
    const link = (a: Netns, aName: string, b: Netns, bName: string) =>
      execa('ip', ['link', 'add', aName, 'netns', a.name, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name]);
    await link(gw, 'bond0.1081', vm, 'eth0');
    await link(gw, 'eth0', net, 'eth0');
    await vm.run('ip', ['link', 'set', 'eth0', 'address', r.mac]);
    for (const [ns, commands] of [
      [
        gw,
        [
          ['addr', 'add', '192.168.128.1/17', 'dev', 'bond0.1081'],
          ['addr', 'add', '203.0.113.1/24', 'dev', 'eth0'],
          ['addr', 'add', '198.51.100.1/24', 'dev', 'eth0'],
          ['link', 'set', 'bond0.1081', 'up'],
          ['link', 'set', 'eth0', 'up'],
        ],
      ],
      [
        vm,
        [
          ['addr', 'add', `${r.ip}/17`, 'dev', 'eth0'],
          ['link', 'set', 'eth0', 'up'],
          ['route', 'add', 'default', 'via', '192.168.128.1'],
        ],
      ],
      [
        net,
        [
          ['addr', 'add', '203.0.113.10/24', 'dev', 'eth0'],
          ['addr', 'add', '198.51.100.7/24', 'dev', 'eth0'],
          ['link', 'set', 'eth0', 'up'],
        ],
      ],
    ] as const) {
      for (const args of commands) await ns.run('ip', [...args]);
    }
    await gw.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await nftRunner({ netns: gw.name })(
      renderRuleset(site, { registrations: [r], allowLists: [{ vmUuid: r.vmUuid, entries }] }),
    );
  });
  afterAll(async () => {
    for (const ns of spaces) await ns.remove();
  });

  async function reaches(host: string, port: number): Promise<boolean> {
    const result = await vm
      .run('timeout', ['1', 'bash', '-c', `</dev/tcp/${host}/${port}`])
      .catch((e: { stderr?: string; exitCode?: number }) => e);
    return /refused/i.test(String(result.stderr ?? ''));
  }

  it.each([
    ['203.0.113.10', 443, true],
    ['203.0.113.10', 444, false],
    ['198.51.100.7', 1000, true],
    ['198.51.100.7', 1050, true],
    ['198.51.100.7', 1100, true],
    ['198.51.100.7', 1101, false],
    ['198.51.100.7', 999, false],
    ['203.0.113.10', 53, false],
  ])('%s:%i reachable: %s', async (host, port, expected) => {
    expect(await reaches(host, port)).toBe(expected);
  });

  it('nothing passes once the NIC is deregistered', async () => {
    await nftRunner({ netns: gw.name })(renderChange(ctx, [{ registration: r, entries }], []));
    expect(await reaches('203.0.113.10', 443)).toBe(false);
    const counters = (
      await gw.run('nft', ['list', 'counter', 'inet', 'ticrypt_counters', 'dropped_unregistered_secure'])
    ).stdout;
    expect(counters).toMatch(/packets [1-9]/);
  });

  it("drops what it refuses without its counters table too (the drops are the main table's)", async () => {
    await gw.run('nft', ['delete', 'table', 'inet', 'ticrypt_counters']);
    expect(await reaches('203.0.113.10', 443)).toBe(false);
    expect(await reaches('198.51.100.7', 999)).toBe(false);
  });
});
