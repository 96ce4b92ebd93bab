/**
 * The live-migration lab of issue 15, shared by test/lab/migration.test.ts
 * and bench/migration.ts: two libvirtd "hosts" on this machine
 * (two-libvirtd.ts), each with ticrypt-net's hooks installed by `hook
 * install` (its own host id and token) and its secure network set up by
 * `host apply` (port security, peers=gateway) on a bridge of its own, both
 * bridges uplinked to the "physical switch" where the backend (`backend
 * serve`: nft, dnsmasq, the API, the SSH forwards) has its leg; a plain
 * segment ticrypt-net does not manage, with a pinger namespace; the real lab
 * guests, booted on host a.
 *
 *     host a: <p>asec ── <p>a.1081 ═ <p>ka (1081) ──┐
 *     host b: <p>bsec ── <p>b.1081 ═ <p>kb (1081) ──┤ switch <p>br ── <p>r1 (1081) ═ <p>g1 backend ── <p>up ═ eth0 internet
 *                                                                                       │                  client 203.0.113.50
 *                                                                        root <p>m0 ═ <p>m1 (API)           server 203.0.113.10:9000
 *     plain:  pinger ns ── <p>apln ══ patch (trunk 1090) ══ <p>bpln   (no ticrypt-net)
 *
 * Guests: `plain` (one NIC on the plain segment) and `secure` (its NIC on the
 * secure network, registered by the hook, and a second NIC on the plain
 * segment, so one migration's loss can be compared with and without
 * ticrypt-net on the same guest).
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { API_IP, API_URL, BackendLab, labUuid, UPLINK_IPS } from './backend-lab.js';
import { type Guest, Guests } from './guest/guest.js';
import { until } from './libvirt-hooks.js';
import { Netns } from './netns.js';
import { Pinger, type PingCount } from './pinger.js';
import { CLI } from './service.js';
import { type HostName, type LabHost, TwoHosts } from './two-libvirtd.js';
import { vethPair } from './veth.js';

/** The plain segment's VLAN and addresses: the plain guest, the secure guest's second NIC, the pinger. */
export const PLAIN_VLAN = 1090;
export const PLAIN = { guest: '192.168.123.10', second: '192.168.123.11', pinger: '192.168.123.2' } as const;
/** The backend's uplink address (where SSH forwards listen), the SSH client, the egress server. */
export const BACKEND = UPLINK_IPS[0];
export const CLIENT = '203.0.113.50';
export const SERVER = '203.0.113.10';
export const SERVER_PORT = 9000;
/** The hook's bound on a whole run, as both hosts' hook.yaml say. */
export const HOOK_MS = 2000;
export const SECURE = { mac: '52:54:00:b5:00:02', vm: labUuid(0xb502) } as const;
export const PLAIN_MAC = '52:54:00:b5:00:01';
export const SECOND_MAC = '52:54:00:b5:00:03';

const ofctl = (...args: string[]) => execa('ovs-ofctl', ['-O', 'OpenFlow14', '--no-names', ...args]);

/** One migration's result. */
export interface Migrated {
  /** Per pinged target, in the order given. */
  readonly counts: readonly PingCount[];
  /** When `virsh migrate` started (`Date.now()`). */
  readonly started: number;
  /** How long the libvirt job took, in ms. */
  readonly jobMs: number;
}

/** The built lab; {@link MigrationLab.remove} removes everything, also after a failure. */
export class MigrationLab {
  backendLab: BackendLab<never, 'sg'> | undefined;
  hosts: TwoHosts | undefined;
  pingerNs: Netns | undefined;
  guests: Guests | undefined;
  plain: Guest | undefined;
  secure: Guest | undefined;
  work = '';
  readonly net: string;

  private constructor(readonly p: string) {
    this.net = `${p}sec`;
  }

  /** The backend lab. */
  get lab(): BackendLab<never, 'sg'> {
    if (this.backendLab === undefined) throw new Error('the backend lab was not built');
    return this.backendLab;
  }

  /** The two hosts. */
  get two(): TwoHosts {
    if (this.hosts === undefined) throw new Error('the hosts were not built');
    return this.hosts;
  }

  /** Build it all and boot both guests on host a (the plain one only with `plainGuest`). */
  static async create(p: string, options: { plainGuest?: boolean } = {}): Promise<MigrationLab> {
    const built = new MigrationLab(p);
    try {
      await built.build(options.plainGuest ?? true);
    } catch (error) {
      await built.remove();
      throw error;
    }
    return built;
  }

  /** A NIC XML with a tap name of host `h`'s (names must differ per host, LAB.md). */
  private nicXml(h: LabHost, source: readonly string[], mac: string, n: number): string {
    const target = `  <target dev='${this.p}${h.name}v${n}'/>`;
    return [...source, `  <mac address='${mac}'/>`, target, `  <model type='virtio'/>`, `</interface>`, ''].join('\n');
  }

  /** A NIC on host `h`'s plain bridge. */
  plainNic(h: LabHost, mac: string, n: number): string {
    const bridge = h.bridge(this.p, 'pln');
    const vlan = `  <vlan><tag id='${PLAIN_VLAN}'/></vlan>`;
    const source = [
      `<interface type='bridge'>`,
      `  <source bridge='${bridge}'/>`,
      `  <virtualport type='openvswitch'/>`,
    ];
    return this.nicXml(h, [...source, vlan], mac, n);
  }

  /** A NIC on the secure network (host `h`'s libvirt network of that name). */
  secureNic(h: LabHost): string {
    return this.nicXml(h, [`<interface type='network'>`, `  <source network='${this.net}'/>`], SECURE.mac, 1);
  }

  private async build(plainGuest: boolean): Promise<void> {
    const p = this.p;
    this.work = await mkdtemp(join(tmpdir(), `ticrypt-${p}-mig-`));
    await chmod(this.work, 0o755);
    this.backendLab = await BackendLab.create<never, 'sg'>(p, {
      site: {
        networks: {
          [this.net]: {
            preset: 'secure',
            peers: 'gateway',
            ssh: { ports: '22200-22209', sources: ['203.0.113.0/24'] },
          },
        },
      },
      vms: {},
      guests: { sg: { network: this.net, mac: SECURE.mac, vm: SECURE.vm } },
      internet: [`${CLIENT}/24`, `${SERVER}/24`],
      tokens: { 'kvm-a': [], 'kvm-b': [], ops: ['--admin'] },
    });
    // The API by a host route on this lab's management link: a /24 another run left behind must not capture it.
    await execa('ip', ['route', 'replace', `${API_IP}/32`, 'dev', `${p}m0`]);
    await this.lab.startService();
    this.hosts = await TwoHosts.create(p, {
      segments: [{ key: 'pln', vlans: [PLAIN_VLAN] }],
      hooks: (h) => ({
        config: {
          hostId: `kvm-${h}`,
          backend: { url: API_URL, insecure: true },
          networks: [{ name: this.net, bridge: `${p}${h}sec`, requireRegistration: false }],
          timeouts: { requestMs: 1000, hookMs: HOOK_MS },
          syslog: false,
        },
        token: this.lab.tokens[`kvm-${h}`]!,
      }),
    });
    // Each host's secure network by `host apply` (bridge, port security, libvirt network), uplinked to the switch.
    for (const h of [this.two.a, this.two.b]) {
      const uplink = `${p}${h.name}`;
      await vethPair({ name: `${uplink}.1081` }, { name: `${p}k${h.name}` }, { txOff: true });
      await execa('ovs-vsctl', ['--timeout=10', 'add-port', this.lab.bridge!.name, `${p}k${h.name}`, 'tag=1081']);
      const site = join(this.work, `site-${h.name}.yaml`);
      await writeFile(
        site,
        `name: ${p}\nhosts:\n  ${h.name}: { uplink: ${uplink} }\nnetworks:\n  ${this.net}: ` +
          `{ preset: secure, bridge: ${p}${h.name}sec, uplink: { mode: vlan }, gatewayInterface: ${p}g1, peers: gateway }\n`,
      );
      this.two.bridges.push(`${p}${h.name}sec`);
      const run = await execa(
        process.execPath,
        [
          ...[CLI, 'host', 'apply', '--site', site, '--host', h.name, '--datapath', 'netdev'],
          ...['--config', h.hookConfig, '--connect', h.uri],
        ],
        { reject: false },
      );
      if (run.exitCode !== 0) throw new Error(`host apply on host ${h.name}: ${run.stderr}${run.stdout}`);
    }
    // The plain segment's pinger.
    this.pingerNs = await Netns.create(`${p}-png`);
    await vethPair({ name: `${p}png` }, { name: 'eth0', netns: this.pingerNs }, { txOff: true });
    const plainBridge = this.two.a.bridge(p, 'pln');
    await execa('ovs-vsctl', ['--timeout=10', 'add-port', plainBridge, `${p}png`, `tag=${PLAIN_VLAN}`]);
    await this.pingerNs.run('ip', ['addr', 'add', `${PLAIN.pinger}/24`, 'dev', 'eth0']);
    // The secure guest is placed on host a and may reach one server; then the guests boot on host a.
    await this.lab.place(SECURE.vm, ['kvm-a']);
    await this.lab.allow('sg', [{ address: SERVER, protocol: 'tcp', ports: SERVER_PORT }]);
    this.guests = new Guests(this.work, this.two.a);
    const a = this.two.a;
    const [secure, plain] = await Promise.all([
      this.guests.boot({
        name: `${p}sg`,
        uuid: SECURE.vm,
        nic: { mac: SECURE.mac, xml: this.secureNic(a) },
        ssh: true,
      }),
      plainGuest
        ? this.guests.boot({
            name: `${p}pln`,
            nic: { mac: PLAIN_MAC, xml: this.plainNic(a, PLAIN_MAC, 0) },
            net: { address: `${PLAIN.guest}/24` },
          })
        : undefined,
    ]);
    this.secure = secure;
    this.plain = plain;
    // The secure guest's second NIC, on the plain segment: the same migration's loss without ticrypt-net.
    await secure.attachNic({ mac: SECOND_MAC, xml: this.plainNic(a, SECOND_MAC, 2) });
    await secure.sh(
      [
        `for i in $(seq 50); do n=$(grep -l ${SECOND_MAC} /sys/class/net/*/address | cut -d/ -f5); [ -n "$n" ] && break; sleep 0.2; done`,
        `ip addr add ${PLAIN.second}/24 dev $n && ip link set $n up`,
      ].join('\n'),
    );
  }

  /** The secure NIC's registration as the backend holds it now (admin view), or undefined. */
  async registration(): Promise<Record<string, unknown> | undefined> {
    const { status, json } = await this.lab.call('GET', '/v1/registrations', 'ops');
    if (status !== 200) throw new Error(`GET /v1/registrations: ${status} ${JSON.stringify(json)}`);
    const all = (Array.isArray(json) ? json : json.registrations) as Record<string, unknown>[];
    return all.find((r) => r.mac === SECURE.mac && r.network === this.net);
  }

  /** Flows on host `h`'s secure bridge that name the secure guest's MAC (port security pins it by MAC). */
  async pinned(h: HostName): Promise<string[]> {
    const flows = (await ofctl('dump-flows', `${this.p}${h}sec`)).stdout;
    return flows.split('\n').filter((line) => line.includes(SECURE.mac));
  }

  /** The secure guest's SSH forward port on the backend (undefined: none). */
  async sshPort(): Promise<number | undefined> {
    const { json } = await this.lab.call('GET', `/v1/vms/${SECURE.vm}/ssh`, 'ops');
    return (json.forwards as { port: number }[] | undefined)?.[0]?.port;
  }

  /** Migrate `guest` from `from` to the other host while pinging each `[ns, address]`. */
  async migratePinged(guest: Guest, from: LabHost, targets: readonly (readonly [Netns, string])[]): Promise<Migrated> {
    const pingers = await Promise.all(targets.map(([ns, address]) => Pinger.start(ns, address)));
    await sleep(500);
    const started = Date.now();
    const { ms } = await this.two.migrate(guest.name, from);
    guest.movedTo(this.two.other(from));
    // The guest answers again from the destination: let a second of replies come in.
    const after = pingers.map((x) => x.replies);
    const deadline = Date.now() + 15_000;
    while (pingers.some((x, i) => x.replies < after[i]! + 100) && Date.now() < deadline) await sleep(50);
    const counts = await Promise.all(pingers.map((x) => x.stop()));
    console.log(
      `migrate ${guest.name} ${from.name}->${this.two.other(from).name}: job ${ms} ms, pings lost: ` +
        counts.map((c, i) => `${targets[i]![1]} ${c.lost} of ${c.sent} (longest gap ${c.longestGap})`).join(', '),
    );
    return { counts, started, jobMs: ms };
  }

  /** Wait until host `h` ran the hook's `release` for `name` after `since` (the source's late stop). */
  released(h: LabHost, name: string, since: number): Promise<true> {
    return until(
      `host ${h.name}'s release hook of ${name}`,
      async () =>
        (await h.hookCalls()).some((c) => c.args === `${name} release end -` && c.begin >= since) || undefined,
      30_000,
    );
  }

  /** Remove everything it built, by name and pid. Never throws. */
  async remove(): Promise<void> {
    await this.guests?.destroyAll().catch(() => undefined);
    await this.hosts?.remove();
    for (const link of [`${this.p}png`, `${this.p}a.1081`, `${this.p}b.1081`]) {
      await execa('ip', ['link', 'del', link], { reject: false });
    }
    await this.pingerNs?.remove();
    await this.backendLab?.remove();
    if (this.work) await rm(this.work, { recursive: true, force: true });
  }
}
