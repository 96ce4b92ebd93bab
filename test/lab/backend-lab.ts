/**
 * The backend lab every backend lab test builds (backend.test.ts,
 * backend-attacks.test.ts, dns.test.ts): `ticrypt-net backend serve` (built
 * CLI) in a "backend" namespace with one gateway interface per network on an
 * Open vSwitch bridge (netdev datapath, an access port per VLAN, as the
 * backend's bond0.<vlan> legs are), an uplink to an "internet" namespace, and
 * a management veth to the root namespace, where the test calls the API. VM
 * namespaces sit on the same bridge, each on its network's VLAN. On request,
 * the internet holds TCP servers (PeerServers) and a real resolver (dnsmasq,
 * every query it gets logged). Everything is named with a per-run prefix and
 * removed by `remove()`.
 *
 *     VMs (1081, 1082, ...) ── OVS bridge <p>br ── g1, g2, ... ─ backend ── up ═══ eth0 internet (servers, resolver)
 *                                                                   │
 *                                     root 198.18.0.2 ── m0 ═══ m1 198.18.0.1 (API)
 */
import { request } from 'node:http';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { expect } from 'vitest';
import { findNetwork } from '../../src/site/lookup.js';
import type { Network, Site } from '../../src/site/model.js';
import { parseSite } from '../../src/site/parse.js';
import { Netns } from './netns.js';
import { OvsBridge } from './ovs.js';
import { PeerServers } from './peer-servers.js';
import { dig } from './probes.js';
import { BackendService, CLI } from './service.js';
import { vethPair } from './veth.js';

/** The API's address and port on the management link. */
export const API_IP = '198.18.0.1';
export const API_PORT = 8443;
export const API_URL = `http://${API_IP}:${API_PORT}`;
/** The backend's uplink addresses toward the internet: what servers see when VM traffic is masqueraded. */
export const UPLINK_IPS = ['203.0.113.1', '198.51.100.1'] as const;
/** The resolver's address in the internet namespace (when the lab runs one). */
export const RESOLVER = '198.51.100.53';
/** The internet namespace's next hop for `routes`. */
const ROUTER = '203.0.113.2';

/** A UUID for lab VM `n`. */
export const labUuid = (n: number) => `0b1d2c3e-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** A VM (a namespace, or a guest the test boots itself): its network, MAC and VM UUID (absent: never registered). */
export interface LabVm {
  readonly network: string;
  readonly mac: string;
  readonly vm?: string | undefined;
}

/** Which token a request carries (a name given to `tokens`), `forged`, `malformed` or `none`. */
export type Auth = string;

/** What to build. */
export interface BackendLabOptions<V extends string, G extends string = never> {
  /** The site file the service runs with; the lab fills in management, uplink and gateway interfaces. */
  readonly site: { backend?: Record<string, unknown>; networks: Record<string, Record<string, unknown>> };
  /** The VM namespaces, each with one NIC on the bridge. */
  readonly vms: Record<V, LabVm>;
  /** VMs the test boots itself (real guests, test/lab/guest): no namespace, but `register` and `allow` know them. */
  readonly guests?: Record<G, LabVm>;
  /** The internet namespace's addresses (CIDR) on its eth0. */
  readonly internet: readonly string[];
  /** Destinations the backend routes to the internet namespace (via its 203.0.113.2), beyond its own subnets. */
  readonly routes?: readonly string[];
  /** `host:port` TCP servers (or `http:host:port` HTTP servers) to run in the internet namespace. */
  readonly servers?: readonly string[];
  /**
   * Run a resolver (dnsmasq) on {@link RESOLVER} in the internet namespace with
   * these records (dnsmasq config lines: `address=`, `host-record=`,
   * `txt-record=`, ...), logging every query it gets (`resolverQueries`).
   * {@link RESOLVER}/24 must be among `internet`.
   */
  readonly resolver?: readonly string[];
  /** Tokens to issue before the service starts: name → `token add` flags (`[]` host, `['--admin']`, `['--metrics']`). */
  readonly tokens: Record<string, readonly string[]>;
  /** Extra `backend serve` arguments. */
  readonly serveArgs?: readonly string[];
}

/** A built lab. */
export class BackendLab<V extends string, G extends string = never> {
  readonly services: BackendService[] = [];
  readonly vm = {} as Record<V, Netns>;
  readonly tokens: Record<string, string> = {};
  site!: Site;
  backend!: Netns;
  internet!: Netns;
  bridge: OvsBridge | undefined;
  servers: PeerServers | undefined;
  work = '';
  paths!: { site: string; store: string; state: string; log: string; resolverLog: string };
  private readonly namespaces: Netns[] = [];
  private stopResolver: (() => Promise<unknown>) | undefined;

  private constructor(
    readonly prefix: string,
    private readonly options: BackendLabOptions<V, G>,
  ) {}

  /**
   * Build the namespaces, the bridge, the links, the servers and resolver
   * asked for, and the tokens (the service is started by {@link startService}).
   */
  static async create<V extends string, G extends string = never>(
    prefix: string,
    options: BackendLabOptions<V, G>,
  ): Promise<BackendLab<V, G>> {
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
      resolverLog: join(this.work, 'resolver', 'queries.log'),
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
    // The API through this lab's link, even when another run's m0 (left over, or another test's) holds 198.18.0.0/24 too.
    await execa('ip', ['route', 'replace', `${API_IP}/32`, 'dev', `${p}m0`]);
    for (const address of UPLINK_IPS) await this.backend.run('ip', ['addr', 'add', `${address}/24`, 'dev', `${p}up`]);
    await this.backend.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // As systemd sets every Debian machine up (loose reverse-path filtering): the service's fail-closed
    // routing must still forward (it sets src_valid_mark itself).
    await this.backend.run('sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=2']);
    for (const address of this.options.internet) await this.internet.run('ip', ['addr', 'add', address, 'dev', 'eth0']);
    if ((this.options.routes ?? []).length > 0) {
      await this.internet.run('ip', ['addr', 'add', `${ROUTER}/24`, 'dev', 'eth0']);
      for (const route of this.options.routes ?? []) {
        await this.backend.run('ip', ['route', 'add', route, 'via', ROUTER, 'dev', `${p}up`]);
      }
    }

    // The VMs: one NIC each, on an access port of their network's VLAN.
    for (const name of Object.keys(this.options.vms) as V[]) {
      const { network, mac } = this.options.vms[name];
      await vethPair({ name: `${p}${name}` }, { name: 'eth0', netns: this.vm[name] }, { txOff: true, mac });
      await this.bridge.addAccessPort(`${p}${name}`, findNetwork(this.site, network).vlan);
      await this.vm[name].run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    }

    if (this.options.servers !== undefined) this.servers = await PeerServers.start(this.internet, this.options.servers);
    if (this.options.resolver !== undefined) await this.startResolver(this.options.resolver);

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

  /**
   * Start `backend serve` in the backend namespace (plain HTTP on the management link) and wait for /healthz (`ms`);
   * `extraArgs` after the lab's `serveArgs` (this start only).
   */
  async startService(ms = 20_000, extraArgs: readonly string[] = []): Promise<BackendService> {
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
          ...['--listen', `${API_IP}:${API_PORT}`, '--insecure-http', ...(this.options.serveArgs ?? []), ...extraArgs],
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

  /** A VM or guest of this lab, by name. */
  labVm(name: V | G): LabVm {
    const guests = this.options.guests ?? ({} as Record<G, LabVm>);
    return Object.hasOwn(guests, name) ? guests[name as G] : this.options.vms[name as V];
  }

  /** The VM launcher's call (admin token `admin`): VM `vmUuid` may run on `hosts`. */
  async place(vmUuid: string, hosts: readonly string[], admin = 'ops'): Promise<void> {
    const { status, json } = await this.call('PUT', `/v1/vms/${vmUuid}/placement`, admin, { hosts });
    expect(status, JSON.stringify(json)).toBe(200);
  }

  /** Place a lab VM (or guest) on `host` and register its NIC there with `host`'s token; the address it got. */
  async register(name: V | G, generation = 1, host = 'kvm-1'): Promise<string> {
    const { network, mac, vm: vmUuid } = this.labVm(name);
    if (vmUuid !== undefined) await this.place(vmUuid, [host]);
    const { status, json } = await this.call('POST', '/v1/register', host, {
      vmUuid,
      vmName: `vm-${name}`,
      mac,
      network,
      generation,
    });
    expect(status, JSON.stringify(json)).toBe(200);
    return json.ip as string;
  }

  /** Set a lab VM's (or guest's) allow-list (admin token `admin`). */
  async allow(name: V | G, entries: unknown[], admin = 'ops'): Promise<void> {
    const { status, json } = await this.call('PUT', `/v1/vms/${this.labVm(name).vm}/allow-list`, admin, { entries });
    expect(status, JSON.stringify(json)).toBe(200);
  }

  /** `nft list table inet ticrypt`, without what traffic and time change (counters, element expiry). */
  async table(): Promise<string> {
    const { stdout } = await this.backend.run('nft', ['list', 'table', 'inet', 'ticrypt']);
    return stdout.replace(/packets \d+ bytes \d+/g, '').replace(/ expires \S+/g, '');
  }

  /** A named counter, its packets: an audit counter (`audit_*`) of table inet ticrypt, any other of inet ticrypt_counters. */
  async counter(name: string): Promise<number> {
    const table = name.startsWith('audit_') ? 'ticrypt' : 'ticrypt_counters';
    const { stdout } = await this.backend.run('nft', ['list', 'counter', 'inet', table, name]);
    return Number(/packets (\d+)/.exec(stdout)?.[1]);
  }

  /** The elements of a set of table inet ticrypt (a map's keys), each joined with ` . `, sorted. */
  async setElements(set: string): Promise<string[]> {
    const { stdout } = await this.backend.run('nft', ['-j', 'list', 'set', 'inet', 'ticrypt', set]);
    type Elem = { concat?: unknown[]; elem?: { val: { concat?: unknown[] } } };
    const found = (JSON.parse(stdout) as { nftables: { set?: { elem?: Elem[] } }[] }).nftables.find((i) => i.set)?.set;
    return (found?.elem ?? [])
      .map((e) =>
        (e.concat ?? e.elem?.val.concat ?? [])
          .map((part) => (typeof part === 'object' ? JSON.stringify(part) : String(part)))
          .join(' . '),
      )
      .sort();
  }

  /** The resolver's query log so far (one `query[TYPE] name from ADDRESS` line per query). */
  async resolverQueries(): Promise<string[]> {
    const log = await readFile(this.paths.resolverLog, 'utf8').catch(() => '');
    return log.split('\n').filter((line) => line.includes('query['));
  }

  /** The service log's audit lines (JSON, `audit: true`), in order. */
  async audits(): Promise<Record<string, unknown>[]> {
    const text = await readFile(this.paths.log, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.includes('"audit":true'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Stop the services, delete the bridge and the namespaces, and the work directory (kept with KEEP_LAB_LOG). */
  async remove(): Promise<void> {
    for (const service of this.services) await service.stop();
    await this.servers?.stop();
    await this.stopResolver?.();
    await this.bridge?.remove();
    for (const ns of this.namespaces) await ns.remove();
    if (process.env.KEEP_LAB_LOG === undefined && this.work) await rm(this.work, { recursive: true, force: true });
    else if (this.work) console.log(`lab files kept in ${this.work}`);
  }

  private async startResolver(records: readonly string[]): Promise<void> {
    const dir = join(this.work, 'resolver');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'dnsmasq.conf'),
      [
        ...['interface=eth0', 'bind-interfaces', `listen-address=${RESOLVER}`, 'except-interface=lo', 'no-resolv'],
        ...['no-hosts', 'port=53', 'log-queries', `log-facility=${this.paths.resolverLog}`],
        ...records,
        `pid-file=${join(dir, 'dnsmasq.pid')}`,
        '',
      ].join('\n'),
    );
    // In the foreground, as this process's child: ended (and reaped) by its pid.
    const args = ['--keep-in-foreground', `--conf-file=${join(dir, 'dnsmasq.conf')}`];
    const resolver = execa('ip', ['netns', 'exec', this.internet.name, 'dnsmasq', ...args], {
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'ignore',
    });
    this.stopResolver = async () => {
      resolver.kill('SIGTERM');
      await resolver;
    };
    for (let i = 0; i < 100 && (await dig(this.backend, RESOLVER, 'ready.invalid', 1)).status === 'timeout'; i++)
      await sleep(50);
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
