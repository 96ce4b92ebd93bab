/**
 * The DNS front knows a VM by its source address only through the registry's
 * decisions (issue 9's placement, expiry and revocation), and only through the
 * production enforcer: a real Registry and store, the real GatewayEnforcer
 * (its nft and dnsmasq parts recorded) and a real DnsService (not listening,
 * its nft transactions recorded). The lab test (test/lab/dns.test.ts) runs
 * the same through the real service.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { DnsService } from '../../../src/backend/dns/service.js';
import { dnsOpenElements } from '../../../src/backend/nft/elements.js';
import { markText } from '../../../src/backend/nft/marks.js';
import type { NftGateway } from '../../../src/backend/nft/gateway.js';
import type { DnsmasqFleet } from '../../../src/backend/service/dnsmasq-fleet.js';
import { GatewayEnforcer } from '../../../src/backend/service/gateway-enforcer.js';
import { Registry } from '../../../src/backend/service/registry.js';
import { openStore, type Store } from '../../../src/backend/store/store.js';
import type { AllowEntry } from '../../../src/protocol/api.js';
import { parseSite } from '../../../src/site/parse.js';

const site = parseSite({
  backend: { registrations: { expireAfter: '10m', expireGrace: '5m' } },
  networks: { secure: { preset: 'secure' } },
});
const VM = '0b1d2c3e-0000-4000-8000-00000000000a';
const MAC = '52:54:00:00:00:0a';
const nic = { vmUuid: VM, vmName: 'vm-a', mac: MAC, network: 'secure' };
const ENTRY: AllowEntry = { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } };
const MIN = 60_000;

let store: Store;
let registry: Registry;
let dns: DnsService;
let lines: string[];
let clock: number;
let ip: string | undefined;

beforeEach(async () => {
  store = openStore(':memory:');
  lines = [];
  clock = 1_000_000;
  ip = undefined;
  dns = new DnsService({ site, nft: async (line) => void lines.push(line), upstream: [] });
  const nft = { rebuild: async () => undefined, change: async () => undefined } as unknown as NftGateway;
  const fleet = {
    start: async () => undefined,
    put: async () => undefined,
    remove: async () => undefined,
  } as unknown as DnsmasqFleet;
  registry = new Registry(site, store, new GatewayEnforcer(nft, fleet, dns), { now: () => clock });
  await registry.start();
  await registry.setAllowList(VM, [ENTRY], 'ops');
});

/** The front's client at the address the registry gave the NIC (stable per MAC); undefined: no answers. */
const client = () => (ip === undefined ? undefined : dns.clients.find('secure', ip));
/** A host's register call; keeps the address it got. */
const register = async (host: string, generation: number) => {
  const result = await registry.register(host, nic, generation);
  ip = result.registration?.ip;
  return result;
};

/** What an answer naming 151.101.0.223 opens for the NIC as the front knows it now. */
const open = async () => {
  const known = client();
  if (known === undefined) throw new Error('no client');
  await dns.opener.open(known.key, dnsOpenElements(known.registration.nicId, '151.101.0.223', ENTRY), 60, {
    address: '151.101.0.223',
    names: ['pypi.org'],
  });
};

describe('the DNS front follows the registry', () => {
  it('answers a NIC only while it is registered by a host it is placed on', async () => {
    expect(await register('kvm-1', 1).catch((e: { code: string }) => e.code)).toBe('E_NOT_PLACED');
    expect(dns.clients.size).toBe(0);
    await registry.setPlacement(VM, ['kvm-1'], 'ops');
    const first = await register('kvm-1', 1);
    expect(client()?.registration.nicId).toBe(first.registration?.nicId);
    await open();
    expect(lines.at(-1)).toContain(`${markText(first.registration?.nicId ?? 0)} . 151.101.0.223 . tcp . 443`);

    // A migration keeps the NIC's id, and with it what its answers opened.
    await registry.setPlacement(VM, ['kvm-1', 'kvm-2'], 'ops');
    await register('kvm-2', 2);
    expect(store.registrations.get('secure', MAC)?.hostId).toBe('kvm-2');
    expect(client()?.registration.nicId).toBe(first.registration?.nicId);
    expect(lines).toHaveLength(1);

    // The launcher takes it off every host: revoked, no answers, and what its answers opened is closed.
    await registry.setPlacement(VM, [], 'ops');
    expect(client()).toBeUndefined();
    expect(lines.at(-1)).toMatch(/^add element .* timeout 1s }; delete element inet ticrypt dns_p16 \{ 0x0000000/);
  });

  it('forgets the NICs of a host that stopped reconciling (expired)', async () => {
    await registry.setPlacement(VM, ['kvm-1'], 'ops');
    await register('kvm-1', 1);
    expect(client()).toBeDefined();
    clock += 5 * MIN + 11 * MIN;
    expect(await registry.sweep()).toEqual({ hosts: ['kvm-1'], removed: 1 });
    expect(client()).toBeUndefined();
  });

  it('after a deregistration, a new registration of the same MAC opens under its new id only', async () => {
    await registry.setPlacement(VM, ['kvm-1'], 'ops');
    const first = await register('kvm-1', 1);
    const before = ip;
    await registry.deregister('kvm-1', { network: 'secure', mac: MAC }, 2);
    expect(client()).toBeUndefined();
    const again = await register('kvm-1', 3);
    expect(again.registration?.nicId).not.toBe(first.registration?.nicId);
    expect(client()?.registration.nicId).toBe(again.registration?.nicId);
    expect(ip).toBe(before);
  });

  it("opens nothing between a table loss and the guard's rebuild, then writes again what it had opened", async () => {
    await registry.setPlacement(VM, ['kvm-1'], 'ops');
    await register('kvm-1', 1);
    await open();
    await open(); // open long enough: not written again
    expect(lines).toHaveLength(1);
    dns.tableLost();
    await expect(open()).rejects.toMatchObject({ code: 'E_FIREWALL_UNAVAILABLE' });
    // The guard's repair: the registry rebuilds only the firewall, which tells the front.
    await registry.rebuild({ firewallOnly: true });
    expect(client()).toBeDefined();
    await open();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe(lines[0]);
  });
});
