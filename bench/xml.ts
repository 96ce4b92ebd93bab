// bench/xml: time per rendered interface (10,000) and per network (1,000), and per parsed domain.
// Run: npm run bench:xml    (no root needed)
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseDomainXml } from '../src/libvirt/domain-nics.js';
import { renderInterfaceXml } from '../src/libvirt/interface-xml.js';
import { renderNetworkXml } from '../src/libvirt/network-xml.js';
import { generateMac } from '../src/site/mac.js';
import { defaultSite } from '../src/site/parse.js';

const site = defaultSite();
const secure = site.networks[0]!;

function measure(label: string, count: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(count, 500); i++) fn(i); // warm-up
  const start = performance.now();
  for (let i = 0; i < count; i++) fn(i);
  const totalMs = performance.now() - start;
  const perItemUs = (totalMs * 1000) / count;
  console.log(
    `${label.padEnd(34)} ${String(count).padStart(6)} items  ${totalMs.toFixed(1).padStart(8)} ms total  ${perItemUs.toFixed(1).padStart(7)} µs/item`,
  );
  return perItemUs;
}

const macs = Array.from({ length: 10_000 }, (_, i) => generateMac(`bench/${i}`));
const perInterface = measure('render interface (secure)', 10_000, (i) =>
  renderInterfaceXml({ network: secure, mac: macs[i]! }),
);
const perNetwork = measure('render network', 1_000, (i) => renderNetworkXml(site, site.networks[i % 3]!));
const domain = `<domain type='qemu'><name>vm</name><devices>${macs
  .slice(0, 4)
  .map((mac) => renderInterfaceXml({ network: secure, mac }))
  .join('')}</devices></domain>`;
const perParse = measure('parse domain XML (4 NICs)', 10_000, () => parseDomainXml(domain));
// The ratio it is judged by: the cost of rendering next to what starting a process costs anyway.
const starts = Array.from({ length: 7 }, () => {
  const t = performance.now();
  execFileSync(process.execPath, ['-e', '0']);
  return performance.now() - t;
}).sort((a, b) => a - b);
const nodeStartUs = starts[3]! * 1000;
console.log(`\nbare node -e 0 (median of 7): ${(nodeStartUs / 1000).toFixed(1)} ms`);
console.log(`ratio render interface / node start: ${(perInterface / nodeStartUs).toExponential(2)}`);
console.log(`ratio parse domain / node start:     ${(perParse / nodeStartUs).toExponential(2)}`);
console.log(`ratio render network / interface:    ${(perNetwork / perInterface).toFixed(2)}`);
