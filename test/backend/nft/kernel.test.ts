import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  nftRunner,
  renderChange,
  renderRuleset,
  type GatewayState,
  type NicSsh,
  type NicState,
} from '../../../src/backend/nft/index.js';
import type { AllowEntry, Registration } from '../../../src/protocol/api.js';
import { defaultSite } from '../../../src/site/parse.js';
import { Netns } from '../../lab/netns.js';
import { runPrefix } from '../../lab/names.js';
import { labAvailable } from '../../lab/prereq.js';
import {
  allowEntry,
  allowLists,
  registration,
  SAMPLE_ENTRIES,
  siteArbitrary,
  sshSource,
  tableContents,
} from './fixtures.js';

const lab = labAvailable('nft', 'ip');
const site = defaultSite();

describe.skipIf(!lab)('table inet ticrypt in a real kernel', () => {
  let ns: Netns;
  let scratch: Netns;
  beforeAll(async () => {
    const prefix = runPrefix();
    ns = await Netns.create(`${prefix}-nft`);
    scratch = await Netns.create(`${prefix}-nft2`);
  });
  afterAll(async () => {
    await ns?.remove();
    await scratch?.remove();
  });

  it('nft -c accepts the default ruleset, empty and populated', async () => {
    const check = nftRunner({ netns: ns.name, check: true });
    await check(renderRuleset(site, { registrations: [], allowLists: [] }));
    const registrations = [registration(1), registration(2), registration(3, 'service')];
    await check(
      renderRuleset(site, { registrations, allowLists: allowLists(registrations, SAMPLE_ENTRIES) }, { log: true }),
    );
  });

  it('nft -c accepts the ruleset of random valid sites and states', async () => {
    const check = nftRunner({ netns: ns.name, check: true });
    await fc.assert(
      fc.asyncProperty(
        siteArbitrary,
        fc.array(allowEntry, { maxLength: 8 }),
        fc.boolean(),
        async (randomSite, entries, log) => {
          const registrations: Registration[] = randomSite.networks.map((network, i) => ({
            ...registration(i + 1),
            network: network.name,
            ip: `10.${i}.1.${i + 5}`,
          }));
          const state = { registrations, allowLists: allowLists(registrations, entries) };
          await check(renderRuleset(randomSite, state, { log }));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('never touches another table', async () => {
    const apply = nftRunner({ netns: ns.name });
    const foreign = [
      'table ip foreign {',
      '  set s { type ipv4_addr; elements = { 10.9.9.9 } }',
      '  chain c { type filter hook forward priority 0; policy accept; ip saddr @s counter accept; }',
      '}',
      'table inet other {',
      '  chain c { type filter hook input priority 10; policy accept; }',
      '}',
      '',
    ].join('\n');
    await apply(foreign);
    const before = (await ns.run('nft', ['list', 'table', 'ip', 'foreign'])).stdout;
    const otherBefore = (await ns.run('nft', ['list', 'table', 'inet', 'other'])).stdout;
    const registrations = [registration(1)];
    await apply(renderRuleset(site, { registrations: [], allowLists: [] }));
    await apply(renderRuleset(site, { registrations, allowLists: allowLists(registrations, SAMPLE_ENTRIES) }));
    expect((await ns.run('nft', ['list', 'table', 'ip', 'foreign'])).stdout).toBe(before);
    expect((await ns.run('nft', ['list', 'table', 'inet', 'other'])).stdout).toBe(otherBefore);
    const tables = (await ns.run('nft', ['list', 'tables'])).stdout.split('\n').sort();
    expect(tables).toEqual([
      'table inet other',
      'table inet ticrypt',
      'table inet ticrypt_counters',
      'table ip foreign',
    ]);
    await apply('delete table ip foreign\ndelete table inet other\n');
  });

  it('a failed transaction changes nothing and says why', async () => {
    const apply = nftRunner({ netns: ns.name });
    await apply(renderRuleset(site, { registrations: [registration(1)], allowLists: [] }));
    const before = await tableContents(ns.name);
    const bad =
      'add element inet ticrypt nic_ids { "bond0.1081" . 52:54:00:00:00:09 . 192.168.129.9 : 0x00000009 }\ndelete element inet ticrypt nic_ids { "bond0.1081" . 52:54:00:00:00:08 . 192.168.129.8 }\n';
    await expect(apply(bad)).rejects.toThrowError(
      expect.objectContaining({
        code: 'E_NFT_APPLY',
        exitCode: 1,
        message: expect.stringMatching(/^nft failed \(exit 1\) applying table inet ticrypt: .*Error/),
      }),
    );
    expect(await tableContents(ns.name)).toEqual(before);
  });

  it('deltas leave exactly the elements a full rebuild would', async () => {
    const apply = nftRunner({ netns: ns.name });
    const rebuild = nftRunner({ netns: scratch.name });
    const registrations = [1, 2, 3, 4].map((n) => registration(n));
    registrations.push(registration(5, 'service'));
    const op = fc.record({
      nic: fc.integer({ min: 0, max: registrations.length - 1 }),
      kind: fc.constantFrom('register', 'deregister', 'allow', 'ssh sources'),
      entries: fc.array(allowEntry, { maxLength: 5 }),
      sources: fc.option(fc.array(sshSource, { maxLength: 4 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
        // The model: which NICs are registered, and each VM's allow-list.
        const registered = new Set<number>();
        const lists = new Map<string, readonly AllowEntry[]>();
        const narrowed = new Map<string, readonly string[]>();
        // The secure NICs have SSH access (a port each); a VM's sources are the site's unless narrowed.
        const sshOf = (r: Registration): NicSsh | undefined => {
          if (r.network !== 'secure') return undefined;
          const own = narrowed.get(r.vmUuid);
          return { port: 22000 + r.nicId, sources: own ?? ['0.0.0.0/0'], narrowed: own !== undefined };
        };
        const nics = (set: ReadonlySet<number>): NicState[] =>
          [...set].map((i) => {
            const r = registrations[i]!;
            const ssh = sshOf(r);
            return { registration: r, entries: lists.get(r.vmUuid) ?? [], ...(ssh ? { ssh } : {}) };
          });
        const state = (): GatewayState => ({
          registrations: [...registered].map((i) => registrations[i]!),
          allowLists: [...lists].map(([vmUuid, entries]) => ({ vmUuid, entries })),
          ssh: nics(registered).flatMap((n) =>
            n.ssh ? [{ network: n.registration.network, mac: n.registration.mac, ...n.ssh }] : [],
          ),
        });
        await apply(renderRuleset(site, state()));
        for (const { nic, kind, entries, sources } of ops) {
          const before = nics(registered);
          const vm = registrations[nic]!.vmUuid;
          if (kind === 'register') registered.add(nic);
          else if (kind === 'deregister') registered.delete(nic);
          else if (kind === 'allow') lists.set(vm, entries);
          else if (sources === undefined) narrowed.delete(vm);
          else narrowed.set(vm, sources);
          const script = renderChange({ site }, before, nics(registered));
          await apply(script);
        }
        await rebuild(renderRuleset(site, state()));
        expect(await tableContents(ns.name)).toEqual(await tableContents(scratch.name));
      }),
      { numRuns: 12 },
    );
  });

  it('shows exactly the expected elements after register and deregister', async () => {
    const apply = nftRunner({ netns: ns.name });
    await apply(renderRuleset(site, { registrations: [], allowLists: [] }));
    const r = registration(7);
    const entries: AllowEntry[] = [
      { type: 'address', address: '203.0.113.0/24', protocol: 'tcp', ports: { from: 443, to: 443 } },
    ];
    const ctx = { site };
    const ssh = { port: 22007, sources: ['203.0.113.0/24'], narrowed: true };
    await apply(renderChange(ctx, [], [{ registration: r, entries, ssh }]));
    const listed = (await ns.run('nft', ['list', 'set', 'inet', 'ticrypt', 'allow_24_p16'])).stdout;
    expect(listed).toContain('elements = { 0x00000008 . 203.0.113.0 . tcp . 443 }');
    expect((await ns.run('nft', ['list', 'map', 'inet', 'ticrypt', 'nic_ids'])).stdout).toContain(
      `elements = { "bond0.1081" . 52:54:00:00:00:07 . ${r.ip} : 0x00000008 }`,
    );
    expect((await ns.run('nft', ['list', 'map', 'inet', 'ticrypt', 'ssh_forwards'])).stdout).toContain(
      `elements = { 22007 : ${r.ip} }`,
    );
    expect((await ns.run('nft', ['list', 'map', 'inet', 'ticrypt', 'ssh_owners'])).stdout).toContain(
      'elements = { 22007 : 0x00000008 }',
    );
    expect((await ns.run('nft', ['list', 'set', 'inet', 'ticrypt', 'ssh_src_24'])).stdout).toContain(
      'elements = { 0x00000008 . 203.0.113.0 }',
    );
    await apply(renderChange(ctx, [{ registration: r, entries, ssh }], []));
    // Again: a plain delete of what is gone fails and changes nothing; the idempotent form succeeds.
    await expect(apply(renderChange(ctx, [{ registration: r, entries, ssh }], []))).rejects.toThrow(/E|nft failed/);
    await apply(renderChange({ ...ctx, idempotent: true }, [{ registration: r, entries, ssh }], []));
    const contents = await tableContents(ns.name);
    expect(Object.values(contents).flat()).toEqual([]);
  });
});
