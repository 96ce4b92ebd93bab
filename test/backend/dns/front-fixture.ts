/**
 * A DNS front on loopback for unit tests: the real handler, resolver, cache,
 * upstream client and opener, with a fake upstream resolver (fake-upstream.ts)
 * and an opener that records its transactions instead of running nft. The
 * client table maps 127.0.0.1 to one registered NIC on the secure network.
 */
import { ResolverCache } from '../../../src/backend/dns/cache.js';
import { DnsClients } from '../../../src/backend/dns/clients.js';
import { DnsHandler, type HandledMessage } from '../../../src/backend/dns/handler.js';
import { Opener } from '../../../src/backend/dns/opener.js';
import { RateLimiter, type RateLimit } from '../../../src/backend/dns/rate.js';
import { DnsResolver } from '../../../src/backend/dns/resolver.js';
import { DnsServer } from '../../../src/backend/dns/server.js';
import { Upstream } from '../../../src/backend/dns/upstream.js';
import type { AllowEntry } from '../../../src/protocol/api.js';
import { defaultSite } from '../../../src/site/parse.js';
import { FakeUpstream, type Zone } from './fake-upstream.js';

/** A front on 127.0.0.1 (random port) in front of a fake upstream. */
export interface TestFront {
  readonly server: DnsServer;
  readonly handler: DnsHandler;
  readonly upstream: FakeUpstream;
  readonly transactions: string[];
  readonly handled: HandledMessage[];
  readonly port: number;
  close(): Promise<void>;
}

/** Start one. `entries`: the allow-list of the VM at 127.0.0.1. */
export async function startTestFront(
  zone: Zone,
  entries: AllowEntry[],
  rate: RateLimit = { perSecond: 100_000, burst: 100_000 },
): Promise<TestFront> {
  const upstream = await FakeUpstream.start(zone);
  const clients = new DnsClients(defaultSite());
  clients.rebuild(
    [
      {
        hostId: 'h',
        vmUuid: 'vm-1',
        vmName: 'vm1',
        mac: '52:54:00:00:00:01',
        network: 'secure',
        ip: '127.0.0.1',
        generation: 1,
        nicId: 1,
      },
    ],
    [{ vmUuid: 'vm-1', entries }],
  );
  const transactions: string[] = [];
  const opener = new Opener({ run: async (line) => void transactions.push(line) });
  const upstreamClient = new Upstream({ servers: [{ address: '127.0.0.1', port: upstream.port }], timeoutMs: 300 });
  const cache = new ResolverCache(upstreamClient);
  const resolver = new DnsResolver({
    client: (network, ip) => clients.find(network, ip),
    lookup: (name, type) => cache.lookup(name, type),
    open: (nic, elements, ttl, reason) => opener.open(nic, elements, ttl, reason),
  });
  const handled: HandledMessage[] = [];
  const handler = new DnsHandler(resolver, new RateLimiter(rate), (h) => handled.push(h));
  const server = new DnsServer({ address: '127.0.0.1', port: 0, idleMs: 2000 }, (source, message, transport) =>
    handler.handle('secure', source, message, transport),
  );
  await server.listen();
  return {
    server,
    handler,
    upstream,
    transactions,
    handled,
    port: server.port ?? 0,
    async close() {
      await server.close();
      upstreamClient.close();
      await upstream.close();
    },
  };
}
