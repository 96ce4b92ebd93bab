import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { Netns } from './netns.js';

/**
 * Each connection first gets the address it came from (so a test sees
 * whether it was masqueraded), then an echo of every line it sends. An
 * `http:HOST:PORT` endpoint answers every HTTP request with that address.
 */
const SERVER = `
const net = require('node:net');
const http = require('node:http');
let pending = process.argv.length - 1;
for (const endpoint of process.argv.slice(1)) {
  const [host, port] = endpoint.replace(/^http:/, '').split(':');
  const server = endpoint.startsWith('http:')
    ? http.createServer((request, response) => response.end(request.socket.remoteAddress + '\\n'))
    : net.createServer((socket) => {
        socket.on('error', () => {});
        socket.write(socket.remoteAddress + '\\n');
        socket.pipe(socket);
      });
  server.listen({ host, port: Number(port) }, () => {
    if (--pending === 0) process.stdout.write('ready\\n');
  });
}
`;

/** TCP servers inside a namespace (one Node process), stopped by its pid. */
export class PeerServers {
  private constructor(private readonly child: ReturnType<typeof spawnServers>) {}

  /** Listen on every `host:port` (or `http:host:port`) in `ns`; resolves once all listen. */
  static async start(ns: Netns, endpoints: readonly string[]): Promise<PeerServers> {
    const child = spawnServers(ns, endpoints);
    const ready = new Promise<void>((resolve, reject) => {
      if (child.stdout) createInterface({ input: child.stdout }).on('line', (l) => l === 'ready' && resolve());
      void child.then((r) => reject(new Error(`peer servers exited: ${r.stderr || r.message}`)));
      setTimeout(() => reject(new Error('peer servers not listening after 10 s')), 10_000).unref();
    });
    const servers = new PeerServers(child);
    try {
      await ready;
    } catch (error) {
      await servers.stop();
      throw error;
    }
    return servers;
  }

  /** Kill the server process by its pid. */
  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.child;
  }
}

function spawnServers(ns: Netns, endpoints: readonly string[]) {
  return execa('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, ...endpoints], {
    reject: false,
    stdout: 'pipe',
    stderr: 'pipe',
  });
}
