import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ListeningPorts, listeningPortsIn, listeningTcpPorts } from '../../../src/backend/ssh/listening.js';

const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 579 1 0000000028b56c79 100 0 0 10 0
   1: 0100007F:A315 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10784632 1 00000000cc9c21ed
   2: 0100007F:8F4C 0100007F:A315 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000
`;

describe('listening TCP ports', () => {
  it('reads the LISTEN lines of a /proc/net/tcp table, and no other state', () => {
    expect(listeningPortsIn(TABLE)).toEqual([2024, 41749]);
    expect(listeningPortsIn('')).toEqual([]);
  });

  it('sees a socket this process listens on, IPv4 and IPv6', async () => {
    const listen = (host: string) =>
      new Promise<Server>((resolve) => {
        const server = createServer();
        server.listen(0, host, () => resolve(server));
      });
    const servers = [await listen('127.0.0.1'), await listen('::1').catch(() => undefined)];
    try {
      const ports = await listeningTcpPorts();
      for (const server of servers) {
        const address = server?.address();
        if (address && typeof address === 'object') expect(ports.has(address.port)).toBe(true);
      }
    } finally {
      for (const server of servers) server?.close();
    }
  });

  it('reads at most once per max age', async () => {
    let reads = 0;
    let now = 0;
    const ports = new ListeningPorts(
      1000,
      async () => new Set([++reads]),
      () => now,
    );
    expect([...(await ports.get())]).toEqual([1]);
    now = 1000;
    expect([...(await ports.get())]).toEqual([1]);
    now = 1001;
    expect([...(await ports.get())]).toEqual([2]);
  });
});
