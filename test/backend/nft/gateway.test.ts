import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markText, NftGateway, nftRunner, type NicState } from '../../../src/backend/nft/index.js';
import { defaultSite } from '../../../src/site/parse.js';
import { runPrefix } from '../../lab/names.js';
import { Netns } from '../../lab/netns.js';
import { labAvailable } from '../../lab/prereq.js';
import { allowLists, registration, SAMPLE_ENTRIES, tableContents } from './fixtures.js';

const lab = labAvailable('nft', 'ip');
const site = defaultSite();
// Address entries only: domain entries also need the site's domain list in each change's context.
const ENTRIES = SAMPLE_ENTRIES.filter((e) => e.type === 'address');
const nic = (n: number, network = 'secure'): NicState => ({
  registration: registration(n, network),
  entries: ENTRIES,
});

describe.skipIf(!lab)('NftGateway: revoke at once, delete in a batch', () => {
  let ns: Netns;
  let model: Netns;
  beforeAll(async () => {
    const prefix = runPrefix();
    ns = await Netns.create(`${prefix}-gw`);
    model = await Netns.create(`${prefix}-gw2`);
  });
  afterAll(async () => {
    await ns?.remove();
    await model?.remove();
  });

  const gateway = () => new NftGateway(site, { nft: nftRunner({ netns: ns.name }), cleanupDelayMs: 60_000 });
  const id = (n: NicState) => markText(n.registration.nicId);

  it('a deregistration revokes the NIC in one transaction and deletes its elements later', async () => {
    const gw = gateway();
    await gw.rebuild({ registrations: [], allowLists: [] });
    await gw.change([], [nic(1)]);
    await gw.change([nic(1)], []);
    const revoked = await tableContents(ns.name);
    expect(revoked['set revoked']).toHaveLength(1);
    expect(revoked['set nic_ids']).toHaveLength(1);
    const listing = (await ns.run('nft', ['list', 'set', 'inet', 'ticrypt', 'revoked'])).stdout;
    expect(listing).toContain(`elements = { ${id(nic(1))} }`);
    await gw.cleanup();
    const clean = await tableContents(ns.name);
    expect(clean['set revoked']).toEqual([]);
    expect(clean['set nic_ids']).toEqual([]);
    expect(clean['set allow_32_p16']).toEqual([]);
  });

  it('a change touching a NIC that awaits its cleanup runs the cleanup first', async () => {
    const gw = gateway();
    await gw.rebuild({ registrations: [], allowLists: [] });
    await gw.change([], [nic(2)]);
    await gw.change([nic(2)], []);
    await gw.change([], [nic(2)]); // the VM starts again before the batch ran
    const contents = await tableContents(ns.name);
    expect(contents['set revoked']).toEqual([]);
    expect(contents['set nic_ids']).toHaveLength(1);
  });

  it('random sequences end, after the cleanup, equal to a full rebuild', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(3), fc.boolean()), { maxLength: 12 }), async (steps) => {
        const gw = gateway();
        await gw.rebuild({ registrations: [], allowLists: [] });
        const up = new Set<number>();
        for (const [n, register] of steps) {
          const before = up.has(n) ? [nic(n)] : [];
          if (register) up.add(n);
          else up.delete(n);
          await gw.change(before, up.has(n) ? [nic(n)] : []);
        }
        await gw.cleanup();
        const registrations = [...up].map((n) => registration(n));
        await nftRunner({ netns: model.name })(
          (await import('../../../src/backend/nft/ruleset.js')).renderRuleset(site, {
            registrations,
            allowLists: allowLists(registrations, ENTRIES),
          }),
        );
        expect(await tableContents(ns.name)).toEqual(await tableContents(model.name));
      }),
      { numRuns: 15 },
    );
  });
});
