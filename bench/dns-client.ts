/**
 * The measuring side of bench/dns.ts, run inside a namespace by it (never on
 * its own): prints one JSON line.
 *
 *     latency SERVER PATTERN FROM COUNT   one query at a time for names PATTERN ({i} = FROM..FROM+COUNT-1): ms each
 *     load SERVER PATTERN NAMES WINDOW S  WINDOW queries in flight over NAMES names for S seconds: answers/s
 *
 * SERVER is an address, or `address:port` (default port 53).
 *     nft COUNT                           COUNT one-element DNS transactions: `nft -f` spawned each vs one `nft -i`
 */
import { createSocket } from 'node:dgram';
import { decode, encode, RECURSION_DESIRED } from 'dns-packet';
import { nftRunner } from '../src/backend/nft/apply.js';
import { renderDnsOps } from '../src/backend/nft/dns-opens.js';
import { dnsOpenElements } from '../src/backend/nft/elements.js';
import { renderRuleset } from '../src/backend/nft/ruleset.js';
import { NftSession } from '../src/backend/nft/session.js';
import { defaultSite } from '../src/site/parse.js';

const [mode, ...rest] = process.argv.slice(2);

const target = (server: string) => {
  const [address, port] = server.split(':');
  return { address: address ?? server, port: Number(port ?? 53) };
};

const queryFor = (id: number, name: string) =>
  encode({ type: 'query', id, flags: RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] });

async function latency(server: string, pattern: string, from: number, count: number): Promise<void> {
  const { address, port } = target(server);
  const socket = createSocket('udp4');
  const ms: number[] = [];
  let failed = 0;
  for (let i = from; i < from + count; i += 1) {
    const id = i & 0xffff;
    const started = process.hrtime.bigint();
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), 2000);
      const finish = (answered: boolean) => {
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(answered);
      };
      const onMessage = (message: Buffer) => {
        if (message.readUInt16BE(0) !== id) return;
        finish((decode(message).answers ?? []).some((a) => a.type === 'A'));
      };
      socket.on('message', onMessage);
      socket.send(queryFor(id, pattern.replace('{i}', String(i))), port, address);
    });
    if (ok) ms.push(Number(process.hrtime.bigint() - started) / 1e6);
    else failed += 1;
  }
  socket.close();
  process.stdout.write(`${JSON.stringify({ ms, failed })}\n`);
}

async function load(server: string, pattern: string, names: number, window: number, seconds: number): Promise<void> {
  const { address, port } = target(server);
  const socket = createSocket('udp4');
  let answered = 0;
  let sent = 0;
  let inFlight = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  const pending = new Map<number, NodeJS.Timeout>();
  await new Promise<void>((resolve) => {
    const send = () => {
      while (inFlight < window && Date.now() < deadline) {
        const id = sent & 0xffff;
        sent += 1;
        inFlight += 1;
        // A query lost (or dropped by a rate limit) frees its slot after a second.
        pending.set(
          id,
          setTimeout(() => {
            pending.delete(id);
            inFlight -= 1;
            send();
          }, 1000),
        );
        socket.send(queryFor(id, pattern.replace('{i}', String(sent % names))), port, address);
      }
      if (inFlight === 0 && Date.now() >= deadline) resolve();
    };
    socket.on('message', (message: Buffer) => {
      const id = message.readUInt16BE(0);
      const timer = pending.get(id);
      if (timer === undefined) return;
      clearTimeout(timer);
      pending.delete(id);
      inFlight -= 1;
      answered += 1;
      send();
    });
    send();
  });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  socket.close();
  process.stdout.write(`${JSON.stringify({ answered, sent, seconds: elapsed, qps: answered / elapsed })}\n`);
}

async function nft(count: number): Promise<void> {
  const apply = nftRunner();
  await apply(renderRuleset(defaultSite(), { registrations: [], allowLists: [] }));
  const entry = { type: 'domain', domain: 'pypi.org', protocol: 'tcp', ports: { from: 443, to: 443 } } as const;
  const line = (i: number, j: number) =>
    renderDnsOps([
      {
        kind: 'open',
        element: dnsOpenElements(1, `10.${j}.${i >> 8}.${i & 255}`, entry)[0]!,
        seconds: 120,
      },
    ]);
  const timed = async (run: () => Promise<void>) => {
    const started = process.hrtime.bigint();
    await run();
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const spawned: number[] = [];
  for (let i = 0; i < count; i += 1) spawned.push(await timed(() => apply(line(i, 1))));
  const session = new NftSession();
  await session.run(line(0, 3));
  const interactive: number[] = [];
  for (let i = 0; i < count; i += 1) interactive.push(await timed(() => session.run(line(i, 2))));
  // Coalesced: 100 answers' elements in one transaction.
  const batch = renderDnsOps(
    Array.from({ length: 100 }, (_, i) => ({
      kind: 'open' as const,
      element: dnsOpenElements(2, `10.4.0.${i}`, entry)[0]!,
      seconds: 120,
    })),
  );
  const batched = await timed(() => session.run(batch));
  await session.close();
  process.stdout.write(`${JSON.stringify({ spawned, interactive, batched100: batched })}\n`);
}

if (mode === 'latency') await latency(rest[0]!, rest[1]!, Number(rest[2]), Number(rest[3]));
else if (mode === 'load') await load(rest[0]!, rest[1]!, Number(rest[2]), Number(rest[3]), Number(rest[4]));
else if (mode === 'nft') await nft(Number(rest[0]));
else throw new Error(`unknown mode ${String(mode)}: latency, load or nft`);
