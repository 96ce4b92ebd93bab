/**
 * The software proxying the seed replaces, for bench/proxy.ts: a userspace
 * TCP proxy on the backend (Node `net` pipes), each client connection piped
 * to a new one to HOST:PORT, both ways.
 *
 *     node --import tsx bench/node-proxy.ts HOST PORT LISTEN_PORT
 */
import { connect, createServer } from 'node:net';

const [host, portText, listenText] = process.argv.slice(2);
if (host === undefined || portText === undefined || listenText === undefined) {
  console.error('usage: node-proxy.ts HOST PORT LISTEN_PORT');
  process.exit(2);
}

createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port: Number(portText), noDelay: true });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream).pipe(client);
}).listen(Number(listenText), '0.0.0.0');
