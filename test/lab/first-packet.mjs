/**
 * Run inside a lab VM namespace: resolve `count` names through the DNS front
 * and send one UDP datagram to each answered address the moment its answer
 * arrives (in the same event-loop turn), to show the answer opened the
 * firewall before it was sent. Prints one JSON line:
 * `{ "answered": N, "sent": N, "failed": [...] }`.
 *
 *     node test/lab/first-packet.mjs SERVER COUNT 'h{i}.first.example' PORT
 */
import { createSocket } from 'node:dgram';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { decode, encode } from 'dns-packet';

const [server, countText, pattern, portText] = process.argv.slice(2);
const count = Number(countText);
const port = Number(portText);
const dns = createSocket('udp4');
const probe = createSocket('udp4');
const failed = [];
let answered = 0;
let sent = 0;

function ask(i) {
  const name = pattern.replace('{i}', String(i));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      dns.off('message', onMessage);
      failed.push(`${name}: no answer`);
      resolve();
    }, 3000);
    function onMessage(message) {
      const reply = decode(message);
      if (reply.id !== i) return;
      clearTimeout(timer);
      dns.off('message', onMessage);
      const address = (reply.answers ?? []).find((a) => a.type === 'A')?.data;
      if (address === undefined) failed.push(`${name}: ${reply.rcode}`);
      else {
        answered += 1;
        probe.send(`first packet ${i}\n`, port, address, () => {
          sent += 1;
          resolve();
        });
        return;
      }
      resolve();
    }
    dns.on('message', onMessage);
    dns.send(encode({ type: 'query', id: i, flags: 1 << 8, questions: [{ type: 'A', name }] }), 53, server);
  });
}

for (let i = 0; i < count; i += 1) await ask(i);
process.stdout.write(`${JSON.stringify({ answered, sent, failed })}\n`);
dns.close();
probe.close();
