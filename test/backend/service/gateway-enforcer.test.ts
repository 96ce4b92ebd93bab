import { describe, expect, it } from 'vitest';
import type { NftGateway } from '../../../src/backend/nft/gateway.js';
import type { DnsmasqFleet } from '../../../src/backend/service/dnsmasq-fleet.js';
import { GatewayEnforcer } from '../../../src/backend/service/gateway-enforcer.js';
import type { EnforcedChange, NicView } from '../../../src/backend/service/enforcer.js';

const nic = (mac: string): NicView => ({
  registration: {
    hostId: 'h',
    vmUuid: 'vm',
    vmName: 'vm',
    mac,
    network: 'secure',
    ip: '192.168.129.1',
    generation: 1,
    nicId: 1,
  },
  entries: [],
});

function parts(failOn?: 'put' | 'remove') {
  const calls: string[] = [];
  const macs = (nics: readonly NicView[]) => nics.map((n) => n.registration.mac).join(',');
  const nft = {
    change: async (before: readonly NicView[], after: readonly NicView[]) => {
      calls.push(`nft ${macs(before)} -> ${macs(after)}`);
    },
    rebuild: async () => void calls.push('nft rebuild'),
  } as unknown as NftGateway;
  const step = (name: 'put' | 'remove') => async (arg: { mac: string }) => {
    calls.push(`${name} ${arg.mac}`);
    if (failOn === name) throw new Error(`${name} failed`);
  };
  const fleet = { put: step('put'), remove: step('remove') } as unknown as DnsmasqFleet;
  const dns = {
    rebuild: () => calls.push('dns rebuild'),
    change: async (change: EnforcedChange) => {
      calls.push(`dns ${macs(change.before)} -> ${macs(change.after)}`);
    },
  };
  return { enforcer: new GatewayEnforcer(nft, fleet, dns), calls };
}

describe('GatewayEnforcer', () => {
  it('changes the firewall first, then removes and adds host entries, then tells the DNS front', async () => {
    const { enforcer, calls } = parts();
    await enforcer.change({ before: [nic('52:54:00:00:00:01')], after: [nic('52:54:00:00:00:02')] });
    expect(calls).toEqual([
      'nft 52:54:00:00:00:01 -> 52:54:00:00:00:02',
      'remove 52:54:00:00:00:01',
      'put 52:54:00:00:00:02',
      'dns 52:54:00:00:00:01 -> 52:54:00:00:00:02',
    ]);
  });

  it('tells the DNS front after the guard rebuilt only the firewall (its dns_* sets are empty now)', async () => {
    const { enforcer, calls } = parts();
    await enforcer.rebuildFirewall({ registrations: [nic('52:54:00:00:00:01').registration], allowLists: [], ssh: [] });
    expect(calls).toEqual(['nft rebuild', 'dns rebuild']);
  });

  it('reverses the firewall change when dnsmasq fails, and rethrows; the DNS front hears nothing', async () => {
    const { enforcer, calls } = parts('put');
    await expect(enforcer.change({ before: [], after: [nic('52:54:00:00:00:02')] })).rejects.toThrow('put failed');
    expect(calls).toEqual(['nft  -> 52:54:00:00:00:02', 'put 52:54:00:00:00:02', 'nft 52:54:00:00:00:02 -> ']);
  });
});

describe('DnsmasqFleet', () => {
  it('refuses a state directory dnsmasq could not read as an unprivileged user, naming the fix', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { DnsmasqFleet } = await import('../../../src/backend/service/dnsmasq-fleet.js');
    const { defaultSite } = await import('../../../src/site/parse.js');
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-private-')); // mode 0700
    try {
      const fleet = new DnsmasqFleet(defaultSite(), { stateDir: join(dir, 'state') });
      await expect(fleet.start([])).rejects.toThrow(
        `dnsmasq failed (could not run) preparing state directory ${join(dir, 'state')}: ${dir} has mode 0700, but dnsmasq reads its host entries as an unprivileged user: make it traversable (chmod o+x ${dir}) or choose another --state-dir`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
