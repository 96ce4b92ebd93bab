import { describe, expect, it } from 'vitest';
import type { Lookup } from '../../../src/backend/dns/cache.js';
import { DnsClients } from '../../../src/backend/dns/clients.js';
import { DnsResolver } from '../../../src/backend/dns/resolver.js';
import type { DnsRecord } from '../../../src/backend/dns/wire.js';
import type { NftElement } from '../../../src/backend/nft/elements.js';
import type { AllowEntry, Registration } from '../../../src/protocol/api.js';
import { defaultSite } from '../../../src/site/parse.js';

const site = defaultSite();
const nic = (n: number, network = 'secure'): Registration => ({
  hostId: 'h',
  vmUuid: `vm-${n}`,
  vmName: `vm${n}`,
  mac: `52:54:00:00:00:0${n}`,
  network,
  ip: network === 'secure' ? `192.168.129.${n}` : `192.168.122.${n}`,
  generation: 1,
  nicId: n,
});
const A = (name: string, data: string, ttl = 300): DnsRecord => ({ name, type: 'A', ttl, data });
const CNAME = (name: string, data: string, ttl = 300): DnsRecord => ({ name, type: 'CNAME', ttl, data });

/** What upstream knows: per name, the answer section. */
const ZONE: Record<string, DnsRecord[]> = {
  'pypi.org': [A('pypi.org', '151.101.0.223', 30), A('pypi.org', '151.101.64.223', 30)],
  'files.pythonhosted.org': [
    CNAME('files.pythonhosted.org', 'dualstack.python.map.fastly.net'),
    A('dualstack.python.map.fastly.net', '151.101.128.223', 20),
  ],
  'www.example.org': [CNAME('www.example.org', 'edge.example.net')],
  'edge.example.net': [A('edge.example.net', '151.101.2.80')],
  'evil.example.org': [CNAME('evil.example.org', 'tracker.example.com'), A('tracker.example.com', '192.0.2.99')],
  'intranet.example.org': [A('intranet.example.org', '10.9.9.9'), A('intranet.example.org', '151.101.1.1')],
  'private.example.org': [A('private.example.org', '10.9.9.9')],
  'loop.example.org': [CNAME('loop.example.org', 'loop.example.org')],
};

function setup(entries: Record<number, AllowEntry[]>) {
  const clients = new DnsClients(site);
  const registrations = [nic(1), nic(2), nic(3, 'service')];
  clients.rebuild(
    registrations,
    Object.entries(entries).map(([n, e]) => ({ vmUuid: `vm-${n}`, entries: e })),
  );
  const asked: string[] = [];
  const opened: { nic: string; elements: readonly NftElement[]; ttl: number }[] = [];
  const notes: string[] = [];
  const resolver = new DnsResolver({
    client: (network, ip) => clients.find(network, ip),
    lookup: async (name, type): Promise<Lookup> => {
      asked.push(`${type} ${name}`);
      const records = ZONE[name];
      return records === undefined
        ? { rcode: 'NXDOMAIN', records: [], cached: false }
        : { rcode: 'NOERROR', records, cached: false };
    },
    open: async (key, elements, ttl) => {
      opened.push({ nic: key, elements, ttl });
    },
    admitted: (nicId, address, name, entries, ttl) =>
      notes.push(`${nicId} ${address} ${name} ${entries.map((e) => e.domain).join(',')} ${ttl}`),
  });
  const ask = (n: number, name: string, type = 'A') => resolver.resolve('secure', `192.168.129.${n}`, { name, type });
  return { resolver, clients, asked, opened, notes, ask };
}

const tcp443 = { protocol: 'tcp', ports: { from: 443, to: 443 } } as const;

describe('DnsResolver', () => {
  it('answers a named name and opens its addresses for that VM, before answering', async () => {
    const { ask, opened } = setup({ 1: [{ type: 'domain', domain: 'pypi.org', ...tcp443 }] });
    const { reply, outcome } = await ask(1, 'PyPI.org.');
    expect(outcome).toBe('answered');
    expect(reply).toEqual({ rcode: 'NOERROR', records: ZONE['pypi.org'] });
    expect(opened).toEqual([
      {
        nic: 'secure/52:54:00:00:00:01',
        elements: [{ set: 'dns_p16', key: '0x00000001 . 151.101.0.223 . tcp . 443' }],
        ttl: 30,
      },
      {
        nic: 'secure/52:54:00:00:00:01',
        elements: [{ set: 'dns_p16', key: '0x00000001 . 151.101.64.223 . tcp . 443' }],
        ttl: 30,
      },
    ]);
  });

  it('tells the audit which queried name opened which address for which NIC id, through which entries', async () => {
    const { ask, notes } = setup({
      1: [
        { type: 'domain', domain: 'pypi.org', ...tcp443 },
        { type: 'domain', domain: '*.example.org', protocol: 'udp' },
      ],
    });
    await ask(1, 'PyPI.org.');
    await ask(1, 'intranet.example.org'); // 10.9.9.9 withheld: only what the answer opened is noted
    expect(notes).toEqual([
      '1 151.101.0.223 pypi.org pypi.org 30',
      '1 151.101.64.223 pypi.org pypi.org 30',
      '1 151.101.1.1 intranet.example.org *.example.org 300',
    ]);
  });

  it("resolves none of another VM's names: NXDOMAIN, nothing asked upstream, nothing opened", async () => {
    const { ask, asked, opened } = setup({ 1: [{ type: 'domain', domain: 'pypi.org', ...tcp443 }] });
    expect(await ask(2, 'pypi.org')).toMatchObject({ outcome: 'blocked', reply: { rcode: 'NXDOMAIN' } });
    expect(await ask(1, 'www.pypi.org')).toMatchObject({ outcome: 'blocked', reply: { rcode: 'NXDOMAIN' } });
    expect(asked).toEqual([]);
    expect(opened).toEqual([]);
  });

  it('answers NODATA for a name above an allowed one (RFC 8020 resolvers would otherwise hide what is below)', async () => {
    const { ask } = setup({ 1: [{ type: 'domain', domain: '*.example.org', protocol: 'any' }] });
    expect(await ask(1, 'example.org')).toMatchObject({ outcome: 'blocked', reply: { rcode: 'NOERROR', records: [] } });
    expect((await ask(1, 'org')).reply.rcode).toBe('NOERROR');
  });

  it('follows a CNAME chain, judging every name; opens with the queried name entries', async () => {
    const { ask, opened } = setup({
      1: [
        { type: 'domain', domain: 'files.pythonhosted.org', ...tcp443 },
        { type: 'domain', domain: '*.map.fastly.net', protocol: 'icmp' },
      ],
      2: [{ type: 'domain', domain: 'files.pythonhosted.org', ...tcp443 }],
    });
    const allowed = await ask(1, 'files.pythonhosted.org');
    expect(allowed.reply.records.map((r) => r.data)).toEqual(['dualstack.python.map.fastly.net', '151.101.128.223']);
    expect(opened.map((o) => o.elements.map((e) => e.key))).toEqual([['0x00000001 . 151.101.128.223 . tcp . 443']]);
    expect(await ask(2, 'files.pythonhosted.org')).toMatchObject({
      outcome: 'cname_blocked',
      reply: { rcode: 'NXDOMAIN', records: [] },
    });
    expect(opened).toHaveLength(1);
  });

  it('never asks upstream for a CNAME target the VM may not resolve', async () => {
    const { ask, asked } = setup({ 1: [{ type: 'domain', domain: 'www.example.org', ...tcp443 }] });
    expect((await ask(1, 'www.example.org')).outcome).toBe('cname_blocked');
    expect(asked).toEqual(['A www.example.org']);
  });

  it('follows a chain across lookups when upstream gives it in parts', async () => {
    const { ask, asked } = setup({
      1: [
        { type: 'domain', domain: 'www.example.org', ...tcp443 },
        { type: 'domain', domain: 'edge.example.net', protocol: 'any' },
      ],
    });
    expect((await ask(1, 'www.example.org')).reply.records.map((r) => r.data)).toEqual([
      'edge.example.net',
      '151.101.2.80',
    ]);
    expect(asked).toEqual(['A www.example.org', 'A edge.example.net']);
  });

  it('answers SERVFAIL to a CNAME loop', async () => {
    const { ask } = setup({ 1: [{ type: 'domain', domain: '*.example.org', protocol: 'any' }] });
    expect(await ask(1, 'loop.example.org')).toMatchObject({ outcome: 'servfail', reply: { rcode: 'SERVFAIL' } });
  });

  it('leaves special-use addresses out and opens nothing for them, unless the entry names the range', async () => {
    const { ask, opened } = setup({
      1: [{ type: 'domain', domain: '*.example.org', ...tcp443 }],
      2: [{ type: 'domain', domain: 'private.example.org', ...tcp443, specialRanges: ['10.9.0.0/16'] }],
    });
    const mixed = await ask(1, 'intranet.example.org');
    expect(mixed).toMatchObject({ outcome: 'answered', withheld: 1 });
    expect(mixed.reply.records.map((r) => r.data)).toEqual(['151.101.1.1']);
    const onlyPrivate = await ask(1, 'private.example.org');
    expect(onlyPrivate).toMatchObject({ outcome: 'nodata', withheld: 1, reply: { rcode: 'NOERROR', records: [] } });
    expect(opened.flatMap((o) => o.elements.map((e) => e.key))).toEqual(['0x00000001 . 151.101.1.1 . tcp . 443']);
    expect((await ask(2, 'private.example.org')).reply.records.map((r) => r.data)).toEqual(['10.9.9.9']);
    expect(opened.at(-1)?.elements.map((e) => e.key)).toEqual(['0x00000002 . 10.9.9.9 . tcp . 443']);
  });

  it('answers AAAA, HTTPS and SVCB empty for an allowed name without asking upstream; refuses TXT, NULL, ANY, MX, PTR', async () => {
    const { ask, asked } = setup({ 1: [{ type: 'domain', domain: 'pypi.org', ...tcp443 }] });
    for (const type of ['AAAA', 'UNKNOWN_65', 'UNKNOWN_64']) {
      expect(await ask(1, 'pypi.org', type)).toMatchObject({
        outcome: 'nodata',
        reply: { rcode: 'NOERROR', records: [] },
      });
    }
    expect((await ask(1, 'other.org', 'AAAA')).reply.rcode).toBe('NXDOMAIN');
    for (const type of ['TXT', 'NULL', 'ANY', 'MX', 'PTR', 'SRV', 'NS', 'SOA', 'AXFR']) {
      expect(await ask(1, 'pypi.org', type)).toMatchObject({ outcome: 'refused_type', reply: { rcode: 'REFUSED' } });
    }
    expect(asked).toEqual([]);
  });

  it('answers a CNAME question with the alias, judged, opening nothing', async () => {
    const { ask, opened } = setup({
      1: [
        { type: 'domain', domain: 'www.example.org', ...tcp443 },
        { type: 'domain', domain: 'edge.example.net', ...tcp443 },
      ],
    });
    expect((await ask(1, 'www.example.org', 'CNAME')).reply.records).toEqual([ZONE['www.example.org']?.[0]]);
    expect(opened).toEqual([]);
  });

  it('refuses wildcard sub-names over the limits, bad names, other classes and unknown sources', async () => {
    const { resolver, ask, asked } = setup({ 1: [{ type: 'domain', domain: '*.example.org', protocol: 'any' }] });
    expect((await ask(1, `${'6578'.repeat(15)}.example.org`)).outcome).toBe('too_long');
    expect((await ask(1, 'a b.example.org')).outcome).toBe('bad_name');
    expect(
      (await resolver.resolve('secure', '192.168.129.1', { name: 'x.example.org', type: 'A', class: 'CH' })).outcome,
    ).toBe('refused_type');
    expect((await resolver.resolve('secure', '192.168.129.99', { name: 'x.example.org', type: 'A' })).outcome).toBe(
      'unknown_client',
    );
    // A service VM is not the front's to answer (open DNS): its registration is not a client.
    expect((await resolver.resolve('service', '192.168.122.3', { name: 'x.example.org', type: 'A' })).outcome).toBe(
      'unknown_client',
    );
    expect(asked).toEqual([]);
  });

  it('judges with the policy as it is when the answer arrives (a change during the lookup wins)', async () => {
    const entries: AllowEntry[] = [{ type: 'domain', domain: 'pypi.org', ...tcp443 }];
    const { ask, clients, opened } = setup({ 1: entries });
    const pending = ask(1, 'pypi.org');
    clients.apply([{ registration: nic(1), entries }], [{ registration: nic(1), entries: [] }]);
    expect((await pending).outcome).toBe('blocked');
    expect(opened).toEqual([]);
  });

  it('follows the registry: a revoked NIC (deregistered, placed elsewhere, expired) gets no answer', async () => {
    const entries: AllowEntry[] = [{ type: 'domain', domain: 'pypi.org', ...tcp443 }];
    const { ask, clients, opened } = setup({ 1: entries });
    const { gone } = clients.apply([{ registration: nic(1), entries }], []);
    expect(gone.map((c) => c.key)).toEqual(['secure/52:54:00:00:00:01']);
    expect((await ask(1, 'pypi.org')).outcome).toBe('unknown_client');
    expect(opened).toEqual([]);
  });

  it('opens for the NIC id the registry holds now: the same MAC registered again under a new id is a changed client', async () => {
    const entries: AllowEntry[] = [{ type: 'domain', domain: 'pypi.org', ...tcp443 }];
    const { ask, clients, opened } = setup({ 1: entries });
    const again = { ...nic(1), nicId: 41 };
    const { changed } = clients.apply([{ registration: nic(1), entries }], [{ registration: again, entries }]);
    expect(changed.map((c) => c.registration.nicId)).toEqual([41]);
    await ask(1, 'pypi.org');
    expect(opened.flatMap((o) => o.elements.map((e) => e.key.split(' . ')[0]))).toEqual(['0x00000029', '0x00000029']);
  });
});
