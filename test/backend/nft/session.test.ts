/**
 * The long-lived `nft -i` and the DNS transactions against a real kernel
 * table, in a throwaway namespace: opens land with their timeout, a re-open
 * refreshes the expiry, closes succeed whether or not the element is there,
 * and a refused transaction changes nothing and leaves the session usable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderDnsOps } from '../../../src/backend/nft/dns-opens.js';
import { dnsOpenElements } from '../../../src/backend/nft/elements.js';
import { nftRunner } from '../../../src/backend/nft/apply.js';
import { renderRuleset } from '../../../src/backend/nft/ruleset.js';
import { NftSession } from '../../../src/backend/nft/session.js';
import { defaultSite } from '../../../src/site/parse.js';
import { runPrefix } from '../../lab/names.js';
import { Netns } from '../../lab/netns.js';
import { labAvailable } from '../../lab/prereq.js';

const lab = labAvailable('nft', 'ip');
/** The NIC id the elements are opened for, and as nft writes it. */
const ID = 1;
const MARK = '0x00000001';
const entry = { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } } as const;

describe.skipIf(!lab)('NftSession and DNS transactions (lab)', () => {
  let ns: Netns;
  let session: NftSession;
  const list = async () => (await ns.run('nft', ['list', 'set', 'inet', 'ticrypt', 'dns_p16'])).stdout;

  beforeAll(async () => {
    ns = await Netns.create(`${runPrefix()}-session`);
    await nftRunner({ netns: ns.name })(renderRuleset(defaultSite(), { registrations: [], allowLists: [] }));
    session = new NftSession({ netns: ns.name });
  });
  afterAll(async () => {
    await session?.close();
    await ns?.remove();
  });

  it('opens an element with its timeout, before the call resolves', async () => {
    const [element] = dnsOpenElements(ID, '151.101.0.223', entry);
    await session.run(renderDnsOps([{ kind: 'open', element: element!, seconds: 120 }]));
    expect(await list()).toMatch(/0x00000001 \. 151\.101\.0\.223 \. tcp \. 443 timeout 2m expires 1m5\d/);
  });

  it('refreshes the expiry when the same element is opened again with the same timeout', async () => {
    const [element] = dnsOpenElements(ID, '151.101.0.224', entry);
    await session.run(renderDnsOps([{ kind: 'open', element: element!, seconds: 3 }]));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await list()).toMatch(/151\.101\.0\.224 \. tcp \. 443 timeout 3s expires 1s/);
    await session.run(renderDnsOps([{ kind: 'open', element: element!, seconds: 3 }]));
    expect(await list()).toMatch(/151\.101\.0\.224 \. tcp \. 443 timeout 3s expires 2s9/);
  });

  it('fails a refused transaction as a whole, and keeps going', async () => {
    const [good] = dnsOpenElements(ID, '151.101.0.225', entry);
    const bad = { set: 'dns_p16', key: `${MARK} . 151.101.0.226 . tcp . 99999` };
    const line = renderDnsOps([
      { kind: 'open', element: good!, seconds: 60 },
      { kind: 'open', element: bad, seconds: 60 },
    ]);
    await expect(session.run(line)).rejects.toThrow(/nft failed.*Error: /);
    expect(await list()).not.toContain('151.101.0.225');
    await session.run(renderDnsOps([{ kind: 'open', element: good!, seconds: 60 }]));
    expect(await list()).toContain('151.101.0.225');
  });

  it('closes whether or not the element is still there', async () => {
    const [element] = dnsOpenElements(ID, '151.101.0.225', entry);
    await session.run(renderDnsOps([{ kind: 'close', element: element! }]));
    await session.run(renderDnsOps([{ kind: 'close', element: element! }]));
    expect(await list()).not.toContain('151.101.0.225');
  });

  it('runs many transactions pipelined, each confirmed in order', async () => {
    const runs = Array.from({ length: 200 }, (_, i) => {
      const [element] = dnsOpenElements(ID, `151.101.1.${i}`, entry);
      return session.run(renderDnsOps([{ kind: 'open', element: element!, seconds: 60 }]));
    });
    await Promise.all(runs);
    expect((await list()).match(/151\.101\.1\.\d+ /g)).toHaveLength(200);
  });

  it('starts again after nft died, failing only what was pending', async () => {
    const broken = new NftSession({ netns: ns.name, timeoutMs: 300 });
    await broken.run(
      renderDnsOps([{ kind: 'open', element: dnsOpenElements(ID, '151.101.2.1', entry)[0]!, seconds: 60 }]),
    );
    await broken.close();
    await broken.run(
      renderDnsOps([{ kind: 'open', element: dnsOpenElements(ID, '151.101.2.2', entry)[0]!, seconds: 60 }]),
    );
    expect(await list()).toContain('151.101.2.2');
    await broken.close();
    await expect(broken.run('add element inet ticrypt dns_p16 { x }\nmore')).rejects.toThrow(/one non-empty line/);
  });
});
