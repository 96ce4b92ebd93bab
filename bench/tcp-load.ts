/**
 * The TCP load of the data-path benchmarks, one process per role, printing
 * JSON (run inside a namespace by bench/netlab.ts):
 *
 *     node --import tsx bench/tcp-load.ts serve ADDRESS PORT          an echo server
 *     node --import tsx bench/tcp-load.ts connect HOST PORT SECONDS   new connections/s: connect, 1 byte there and back, close (32 at a time)
 *     node --import tsx bench/tcp-load.ts rtt HOST PORT SECONDS       64-byte round trips on one connection: median and p99 in µs
 *     node --import tsx bench/tcp-load.ts proxy HOST PORT LISTEN_PORT  a userspace TCP proxy (Node `net` pipes) to HOST:PORT
 */
import { connect, createServer, type Socket } from 'node:net';

const [mode, host = '0.0.0.0', portText = '22', secondsText = '3'] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Write `payload` and wait until as many bytes came back. */
function roundTrip(socket: Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got >= payload.length) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(payload);
  });
}

async function connections(): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  const one = Buffer.from('x');
  const worker = async () => {
    while (Date.now() < deadline) {
      const socket = await open();
      await roundTrip(socket, one);
      socket.destroy();
      done += 1;
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: 32 }, worker));
  console.log(JSON.stringify({ connectionsPerSecond: done / ((Date.now() - started) / 1000) }));
}

async function rtt(): Promise<void> {
  const socket = await open();
  const payload = Buffer.alloc(64, 7);
  for (let i = 0; i < 200; i += 1) await roundTrip(socket, payload); // warm-up
  const times: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const start = process.hrtime.bigint();
    await roundTrip(socket, payload);
    times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  socket.destroy();
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  console.log(JSON.stringify({ rttMedianUs: at(0.5), rttP99Us: at(0.99) }));
}

if (mode === 'serve') {
  createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  }).listen(port, host);
} else if (mode === 'proxy') {
  // The software proxying the seed replaces: each client connection piped to a new one to the VM, both ways.
  createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host, port, noDelay: true });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  }).listen(Number(secondsText), '0.0.0.0');
} else if (mode === 'connect') {
  await connections();
} else if (mode === 'rtt') {
  await rtt();
} else {
  console.error('usage: tcp-load.ts serve|connect|rtt HOST PORT [SECONDS]');
  process.exit(2);
}
