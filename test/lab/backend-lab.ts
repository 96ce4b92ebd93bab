/**
 * The backend lab both backend lab tests build: `ticrypt-net backend serve`
 * (built CLI) in a "backend" namespace with one gateway interface per
 * network on an Open vSwitch bridge (netdev datapath, an access port per
 * VLAN, as the backend's bond0.<vlan> legs are), an uplink to an "internet"
 * namespace, and a management veth to the root namespace, where the test
 * calls the API. VM namespaces sit on the same bridge, each on its network's
 * VLAN. Everything is named with a per-run prefix and removed by `remove()`.
 *
 *     VMs (1081, 1082, ...) ── OVS bridge <p>br ── g1, g2, ... ─ backend ── up ═══ eth0 internet
 *                                                                   │
 *                                     root 198.18.0.2 ── m0 ═══ m1 198.18.0.1 (API)
 */
import { request } from 'node:http';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { findNetwork } from '../../src/site/lookup.js';
import type { Network, Site } from '../../src/site/model.js';
import { parseSite } from '../../src/site/parse.js';
import { Netns } from './netns.js';
import { OvsBridge } from './ovs.js';
import { BackendService, CLI } from './service.js';
import { vethPair } from './veth.js';

/** The API's address and port on the management link. */
export const API_IP = '198.18.0.1';
export const API_PORT = 8443;
export const API_URL = `http://${API_IP}:${API_PORT}`;
/** The backend's uplink addresses toward the internet: what servers see when VM traffic is masqueraded. */
export const UPLINK_IPS = ['203.0.113.1', '198.51.100.1'] as const;

/** A VM namespace: its network and MAC. */
export interface LabVm {
  readonly network: string;
  readonly mac: string;
}

/** Which token a request carries (a name given to `tokens`), `forged`, `malformed` or `none`. */
export type Auth = string;

/** What to build. */
export interface BackendLabOptions<V extends string> {
  /** The site file the service runs with; the lab fills in management, uplink and gateway interfaces. */
  readonly site: { backend?: Record<string, unknown>; networks: Record<string, Record<string, unknown>> };
  readonly vms: Record<V, LabVm>;
  /** The internet namespace's addresses (CIDR) on its eth0. */
  readonly internet: readonly string[];
  /** Tokens to issue before the service starts: name → `token add` flags (`[]` host, `['--admin']`, `['--metrics']`). */
  readonly tokens: Record<string, readonly string[]>;
}

/** A built lab. */
export class BackendLab<V extends string> {
  readonly services: BackendService[] = [];
  readonly vm = {} as Record<V, Netns>;
  readonly tokens: Record<string, string> = {};
  site!: Site;
  backend!: Netns;
  internet!: Netns;
  bridge: OvsBridge | undefined;
  work = '';
  paths!: { site: string; store: string; state: string; log: string };
  private readonly namespaces: Netns[] = [];

  private constructor(
    readonly prefix: string,
    private readonly options: BackendLabOptions<V>,
  ) {}

  /** Build the namespaces, the bridge, the links and the tokens (the service is started by {@link startService}). */
  static async create<V extends string>(prefix: string, options: BackendLabOptions<V>): Promise<BackendLab<V>> {
    const lab = new BackendLab(prefix, options);
    try {
      await lab.build();
    } catch (error) {
      await lab.remove();
      throw error;
    }
    return lab;
  }

  private async build(): Promise<void> {
    const p = this.prefix;
    this.work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-`));
    await chmod(this.work, 0o755); // dnsmasq reads the host entries after dropping to nobody
    this.paths = {
      site: join(this.work, 'site.json'),
      store: join(this.work, 'backend.db'),
      state: join(this.work, 'state'),
      log: join(this.work, 'service.log'),
    };
    const names = Object.keys(this.options.site.networks);
    const siteFile = {
      name: 'lab',
      ...this.options.site,
      backend: {
        management: { address: API_IP, port: API_PORT },
        uplink: `${p}up`,
        ...this.options.site.backend,
      },
      networks: Object.fromEntries(
        names.map((name, i) => [name, { ...this.options.site.networks[name], gatewayInterface: `${p}g${i + 1}` }]),
      ),
    };
    this.site = parseSite(siteFile);
    await writeFile(this.paths.site, JSON.stringify(siteFile));

    this.backend = await Netns.create(`${p}-bk`);
    this.internet = await Netns.create(`${p}-in`);
    this.namespaces.push(this.backend, this.internet);
    for (const name of Object.keys(this.options.vms) as V[]) {
      this.vm[name] = await Netns.create(`${p}-${name}`);
      this.namespaces.push(this.vm[name]);
    }
    this.bridge = await OvsBridge.create(`${p}br`);

    // The backend: one leg per network on the bridge, tagged; the uplink; the management link.
    for (const [i, network] of this.site.networks.entries()) {
      await vethPair(
        { name: `${p}r${i + 1}` },
        { name: network.gatewayInterface, netns: this.backend },
        { txOff: true },
      );
      await this.bridge.addAccessPort(`${p}r${i + 1}`, network.vlan);
      const prefixLength = network.subnet.split('/')[1] ?? '';
      await this.backend.run('ip', [
        'addr',
        'add',
        `${network.gateway}/${prefixLength}`,
        'dev',
        network.gatewayInterface,
      ]);
    }
    await vethPair({ name: `${p}up`, netns: this.backend }, { name: 'eth0', netns: this.internet });
    await vethPair({ name: `${p}m0` }, { name: `${p}m1`, netns: this.backend });
    await this.backend.run('ip', ['addr', 'add', `${API_IP}/24`, 'dev', `${p}m1`]);
    await execa('ip', ['addr', 'add', '198.18.0.2/24', 'dev', `${p}m0`]);
    for (const address of UPLINK_IPS) await this.backend.run('ip', ['addr', 'add', `${address}/24`, 'dev', `${p}up`]);
    await this.backend.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // As systemd sets every Debian machine up (loose reverse-path filtering): the service's fail-closed
    // routing must still forward (it sets src_valid_mark itself).
    await this.backend.run('sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=2']);
    for (const address of this.options.internet) await this.internet.run('ip', ['addr', 'add', address, 'dev', 'eth0']);

    // The VMs: one NIC each, on an access port of their network's VLAN.
    for (const name of Object.keys(this.options.vms) as V[]) {
      const { network, mac } = this.options.vms[name];
      await vethPair({ name: `${p}${name}` }, { name: 'eth0', netns: this.vm[name] }, { txOff: true, mac });
      await this.bridge.addAccessPort(`${p}${name}`, findNetwork(this.site, network).vlan);
      await this.vm[name].run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    }

    for (const [name, flags] of Object.entries(this.options.tokens)) {
      this.tokens[name] = (
        await execa(process.execPath, [CLI, 'backend', 'token', 'add', name, ...flags, '--store', this.paths.store])
      ).stdout.trim();
    }
  }

  /** A network of the site. */
  network(name: string): Network {
    return findNetwork(this.site, name);
  }

  /** The gateway interface of a network, in the backend namespace. */
  gatewayInterface(network: string): string {
    return this.network(network).gatewayInterface;
  }

  /** Start `backend serve` in the backend namespace (plain HTTP on the management link) and wait for /healthz (`ms`). */
  async startService(ms = 20_000): Promise<BackendService> {
    const service = await BackendService.start(
      {
        netns: this.backend,
        args: [
          ...[
            'backend',
            'serve',
            '--site',
            this.paths.site,
            '--store',
            this.paths.store,
            '--state-dir',
            this.paths.state,
          ],
          ...['--listen', `${API_IP}:${API_PORT}`, '--insecure-http'],
        ],
        logFile: this.paths.log,
        pidFile: join(this.work, `service-${this.services.length}.pid`),
        url: API_URL,
      },
      ms,
    );
    this.services.push(service);
    return service;
  }

  /** Call the API with one of the lab's tokens (or a forged, malformed or no token); JSON in and out. */
  async call(
    method: string,
    path: string,
    auth: Auth,
    body?: unknown,
    raw?: string,
  ): Promise<{ status: number; json: any }> {
    const header = (): Record<string, string> => {
      if (auth === 'none') return {};
      // Well-formed (principal.secret, 43 base64url characters), but not the secret issued.
      if (auth === 'forged') return { authorization: `Bearer kvm-1.${'A'.repeat(43)}` };
      if (auth === 'malformed') return { authorization: `Token ${this.tokens['kvm-1'] ?? ''}` };
      const token = this.tokens[auth];
      if (token === undefined) throw new Error(`no token ${auth} in this lab`);
      return { authorization: `Bearer ${token}` };
    };
    if (raw !== undefined) {
      const { status, text } = await rawRequest(method, `${API_URL}${path}`, header(), raw);
      return { status, json: text ? JSON.parse(text) : undefined };
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const response = await fetch(`${API_URL}${path}`, {
      method,
      headers: { ...header(), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { body: payload }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  /** `nft list table inet ticrypt`, without what traffic and time change (counters, element expiry). */
  async table(): Promise<string> {
    const { stdout } = await this.backend.run('nft', ['list', 'table', 'inet', 'ticrypt']);
    return stdout.replace(/packets \d+ bytes \d+/g, '').replace(/ expires \S+/g, '');
  }

  /** A named counter of table inet ticrypt: its packets. */
  async counter(name: string): Promise<number> {
    const { stdout } = await this.backend.run('nft', ['list', 'counter', 'inet', 'ticrypt', name]);
    return Number(/packets (\d+)/.exec(stdout)?.[1]);
  }

  /** The service log's audit lines (JSON, `audit: true`), in order. */
  async audits(): Promise<Record<string, unknown>[]> {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(this.paths.log, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.includes('"audit":true'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Stop the services, delete the bridge and the namespaces, and the work directory (kept with KEEP_LAB_LOG). */
  async remove(): Promise<void> {
    for (const service of this.services) await service.stop();
    await this.bridge?.remove();
    for (const ns of this.namespaces) await ns.remove();
    if (process.env.KEEP_LAB_LOG === undefined && this.work) await rm(this.work, { recursive: true, force: true });
    else if (this.work) console.log(`lab files kept in ${this.work}`);
  }
}

/**
 * A request with a raw JSON body over node:http. The server may answer (413)
 * and close before the whole body is sent; fetch then reports only the
 * broken pipe, so this reads the answer as it comes and retries a transport
 * failure that left no answer.
 */
async function rawRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  payload: string,
): Promise<{ status: number; text: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise((resolve, reject) => {
        const length = String(Buffer.byteLength(payload));
        const headersOut = { ...headers, 'content-type': 'application/json', 'content-length': length };
        const req = request(url, { method, headers: headersOut, timeout: 15_000 }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 15 s`)));
        req.on('error', reject);
        req.end(payload);
      });
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}
