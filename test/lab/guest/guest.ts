/**
 * Real Linux guests for lab tests: the Debian cloud kernel and a busybox +
 * dropbear initramfs (build.sh), booted by the real libvirtd as
 * `<domain type='qemu'>` (TCG) with direct kernel boot, on a libvirt network
 * (with a portgroup) or straight on an OVS bridge (with a VLAN tag).
 *
 * How a guest is told what to do, without rebuilding anything:
 * - at boot, the kernel command line (`tn.net`, `tn.ipv6`, `tn.ssh`, `tn.run`;
 *   see rootfs/init), at most 2048 bytes;
 * - afterwards, the command channel (channel.ts): a virtio-serial port on
 *   which the guest runs each script it is sent and answers with its stdout,
 *   stderr and exit code. It needs no network, so it works on a guest the
 *   firewall cuts off or that has no address; SSH (dropbear on port 22,
 *   `ssh: true`) is there for what must cross the network.
 *
 * What it says comes from its serial console, logged to a file: markers
 * `TN:INIT`, `TN:LEASE eth0 IP`, `TN:SSH`, `TN:READY` (each with the guest's
 * uptime). Every guest is destroyed by {@link Guests.destroyAll}; call it in
 * `afterAll`, so a failed test leaves none behind (and a guest whose test
 * process died is destroyed by the next boot anywhere).
 *
 * @example
 * const guests = new Guests(work);
 * afterAll(() => guests.destroyAll());
 * const g = await guests.boot({ name: `${p}g1`, nic: { mac, bridge: `${p}br`, vlan: 1081 } });
 * expect(await g.sh('nslookup allowed.example')).toContain('203.0.113.10');
 */
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Netns } from '../netns.js';
import { alive } from '../service.js';
import { CommandChannel, type GuestRun } from './channel.js';
import { guestImage } from './image.js';
import { describeTimes } from './times.js';

/** A guest NIC: on a libvirt network (and portgroup), on an OVS bridge (and VLAN), or as given XML. */
export type GuestNic =
  | { readonly mac: string; readonly network: string; readonly portgroup?: string }
  | { readonly mac: string; readonly bridge: string; readonly vlan?: number }
  /** An `<interface>` element (e.g. from `renderInterfaceXml`); the checksum setting below is added. */
  | { readonly mac: string; readonly xml: string };

/** How to boot a guest. */
export interface GuestOptions {
  /** The libvirt domain name: start it with the run prefix. Also the guest's hostname. */
  readonly name: string;
  readonly nic: GuestNic;
  /** eth0 at boot: `dhcp` (default; the lease is awaited), `none`, or a static address. */
  readonly net?: 'dhcp' | 'none' | { readonly address: string; readonly gateway?: string };
  /** IPv6 on eth0 (default off, set before the link is up). */
  readonly ipv6?: boolean;
  /** Start dropbear on port 22, letting in the lab's key ({@link Guest.ssh}). */
  readonly ssh?: boolean;
  /** A script run once at boot, after the network; its output goes to the console. */
  readonly script?: string;
  /** The domain UUID (default: libvirt's choice). */
  readonly uuid?: string;
  /** Memory, default 128 MiB. */
  readonly memoryMiB?: number;
  /** What {@link Guests.boot} waits for: `ready` (default: lease if dhcp, then TN:READY) or `none`. */
  readonly wait?: 'ready' | 'none';
}

const VIRSH = ['-q', '-c', 'qemu:///system'];
const virsh = (...args: string[]) => execa('virsh', [...VIRSH, ...args], { timeout: 60_000 });

/**
 * The libvirtd a guest runs on: its URI, and how a path it names (the command
 * channel's socket) is seen from here. Default: the system's libvirtd.
 * Another libvirtd in a private mount namespace (test/lab/two-libvirtd.ts) sees
 * its own /var/lib/libvirt, a scratch directory from here.
 */
export interface GuestHost {
  readonly uri: string;
  readonly path?: (inside: string) => string;
}
const SYSTEM: GuestHost = { uri: 'qemu:///system' };
const virshOn = (host: GuestHost, ...args: string[]) =>
  execa('virsh', ['-q', '-c', host.uri, ...args], { timeout: 60_000 });
const DESCRIPTION = 'ticrypt-net lab guest of pid';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const attr = (value: string | number) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The `<interface>` for a NIC, with host checksum offload off: without it, TCP replies cross the netdev datapath with bad checksums (LAB.md). */
export function guestNicXml(nic: GuestNic): string {
  if (!MAC.test(nic.mac)) throw new Error(`guest NIC: expected a MAC like 52:54:00:12:34:56, found ${nic.mac}`);
  const driver = `<driver><host csum='off'/></driver>`;
  if ('xml' in nic) {
    if (!nic.xml.toLowerCase().includes(nic.mac.toLowerCase())) {
      throw new Error(`guest NIC: the given interface XML does not carry MAC ${nic.mac}`);
    }
    return nic.xml.replace(/<\/interface>\s*$/, `  ${driver}\n</interface>\n`);
  }
  const lines =
    'network' in nic
      ? [
          `<interface type='network'>`,
          `  <source network='${attr(nic.network)}'${nic.portgroup === undefined ? '' : ` portgroup='${attr(nic.portgroup)}'`}/>`,
        ]
      : [
          `<interface type='bridge'>`,
          `  <source bridge='${attr(nic.bridge)}'/>`,
          `  <virtualport type='openvswitch'/>`,
          ...(nic.vlan === undefined ? [] : [`  <vlan><tag id='${attr(nic.vlan)}'/></vlan>`]),
        ];
  return [
    ...lines,
    `  <mac address='${attr(nic.mac)}'/>`,
    `  <model type='virtio'/>`,
    `  ${driver}`,
    `</interface>`,
    '',
  ].join('\n');
}

/** The kernel command line for `options` (rootfs/init reads the `tn.*` words). */
export function guestCmdline(options: GuestOptions, sshKey?: string): string {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const net = options.net ?? 'dhcp';
  const words = [
    'console=ttyS0',
    'quiet',
    'loglevel=3',
    'cryptomgr.notests', // the kernel's crypto self-tests: ~0.3 s of TCG per boot, and not what a lab test tests
    'panic=-1',
    `tn.name=${options.name}`,
    `tn.net=${typeof net === 'string' ? net : `${net.address}${net.gateway === undefined ? '' : `,${net.gateway}`}`}`,
    `tn.ipv6=${options.ipv6 === true ? 1 : 0}`,
    ...(sshKey === undefined ? [] : [`tn.ssh=${b64(sshKey)}`]),
    ...(options.script === undefined ? [] : [`tn.run=${b64(options.script)}`]),
  ];
  const line = words.join(' ');
  if (words.some((w) => w.startsWith('tn.') && /\s/.test(w)))
    throw new Error(`guest ${options.name}: a tn.* value holds whitespace`);
  if (Buffer.byteLength(line) > 2048) {
    throw new Error(
      `guest ${options.name}: kernel command line of ${Buffer.byteLength(line)} bytes, at most 2048 (send the script over the channel instead)`,
    );
  }
  return line;
}

let labKey: Promise<{ file: string; publicKey: string }> | undefined;
/** The lab's SSH key pair (ed25519, made once per process). */
export function labSshKey(): Promise<{ file: string; publicKey: string }> {
  labKey ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-guest-key-'));
    const file = join(dir, 'id_ed25519');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ticrypt-net-lab', '-f', file]);
    return { file, publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
  })();
  return labKey;
}

/** One booted guest. */
export class Guest {
  /** eth0's address from the boot lease (or the static one). */
  ip: string | undefined;
  /** From the start of `virsh create` to the lease marker on the console, in ms. */
  leaseMs: number | undefined;
  private channel: CommandChannel | undefined;

  constructor(
    readonly name: string,
    readonly mac: string,
    /** The serial console's log file. */
    readonly consoleFile: string,
    private readonly workDir: string,
    /** Where it runs now: {@link Guest.movedTo} after a migration. */
    public host: GuestHost = SYSTEM,
  ) {}

  /** Record that the guest now runs on `host` (after `virsh migrate`); the command channel stays behind. */
  movedTo(host: GuestHost): void {
    this.channel?.close();
    this.channel = undefined;
    this.host = host;
  }

  /** The console so far ('' before the first line). */
  async console(): Promise<string> {
    return readFile(this.consoleFile, 'utf8').catch(() => '');
  }

  /** The console's length now: pass it as `after` to wait only for what comes later. */
  async mark(): Promise<number> {
    return (await this.console()).length;
  }

  /** Wait until the console (after offset `after`) matches `pattern`; rejects with its last lines after `ms`. */
  async waitFor(pattern: RegExp, ms = 30_000, after = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const text = (await this.console()).slice(after);
      const match = pattern.exec(text);
      if (match) return match;
      if (Date.now() > deadline) {
        throw new Error(`guest ${this.name}: no ${pattern} on its console after ${ms} ms; it ends:\n${tail(text)}`);
      }
      await sleep(50);
    }
  }

  /** Attach the command channel (QEMU's end of the tn.agent port, found in the live XML). */
  async connect(): Promise<void> {
    const xml = (await virshOn(this.host, 'dumpxml', this.name)).stdout;
    const path =
      /<channel type='unix'>\s*<source mode='bind' path='([^']+)'\/>\s*<target type='virtio' name='tn\.agent'/.exec(
        xml,
      )?.[1];
    if (path === undefined) throw new Error(`guest ${this.name}: no tn.agent channel in its live XML`);
    this.channel = await CommandChannel.connect(this.host.path?.(path) ?? path, this.name);
  }

  /** Run a script with `sh` in the guest (over the channel), ended there after `seconds`. Never rejects on a non-zero exit. */
  run(script: string, seconds = 20): Promise<GuestRun> {
    if (this.channel === undefined) return Promise.reject(new Error(`guest ${this.name}: not connected`));
    return this.channel.run(script, seconds);
  }

  /** Like {@link Guest.run}, but resolves to stdout and rejects on a non-zero exit, with stderr. */
  async sh(script: string, seconds = 20): Promise<string> {
    const result = await this.run(script, seconds);
    if (result.exitCode !== 0) {
      throw new Error(
        `guest ${this.name}: exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''} from: ${script}\n${result.stderr}${result.stdout}`,
      );
    }
    return result.stdout;
  }

  /**
   * Run several scripts at once in the guest and wait for all: probes that
   * time out then cost one timeout, not one each. Resolves to each one's exit
   * code and output (stdout and stderr together).
   */
  async runAll<K extends string>(
    scripts: Record<K, string>,
    seconds = 20,
  ): Promise<Record<K, { exitCode: number; output: string }>> {
    const keys = Object.keys(scripts) as K[];
    const script = [
      'd=$(mktemp -d)',
      ...keys.map((k, i) => `( (\n${scripts[k]}\n) >$d/${i} 2>&1; echo $? >$d/${i}.rc ) &`),
      'wait',
      ...keys.map((_, i) => `echo "${i} $(cat $d/${i}.rc) $(base64 -w 0 $d/${i})"`),
      'rm -rf "$d"',
    ].join('\n');
    const lines = (await this.sh(script, seconds)).trim().split('\n');
    const results = {} as Record<K, { exitCode: number; output: string }>;
    for (const line of lines) {
      const [index, rc, out = ''] = line.split(' ');
      results[keys[Number(index)]!] = { exitCode: Number(rc), output: Buffer.from(out, 'base64').toString('utf8') };
    }
    return results;
  }

  /** Start a script in the background in the guest, its output to /tmp/NAME.log; resolves to its pid. */
  async spawn(script: string, name: string): Promise<number> {
    if (!/^[a-z0-9_-]+$/i.test(name)) throw new Error(`guest ${this.name}: bad log name ${name}`);
    const pid = await this.sh(`(${script}\n) >/tmp/${name}.log 2>&1 </dev/null &\necho $!`);
    return Number(pid.trim());
  }

  /** SSH to the guest (dropbear, the lab key) from inside namespace `from`; every failure is a result. */
  async ssh(from: Netns, command: string, seconds = 20) {
    if (this.ip === undefined) throw new Error(`guest ${this.name}: no address known to SSH to`);
    const key = await labSshKey();
    return execa(
      'ip',
      [
        ...['netns', 'exec', from.name, 'ssh', '-i', key.file, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'],
        ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5'],
        `root@${this.ip}`,
        command,
      ],
      { reject: false, timeout: seconds * 1000 },
    );
  }

  /** Hot-plug a NIC (`virsh attach-device --live`). */
  async attachNic(nic: GuestNic): Promise<void> {
    const file = join(this.workDir, `${this.name}-nic-${nic.mac.replaceAll(':', '')}.xml`);
    await writeFile(file, guestNicXml(nic));
    await virshOn(this.host, 'attach-device', this.name, file, '--live');
  }

  /** Unplug a NIC by its MAC (live, an OVS NIC shows as type bridge); the guest ejects it (ACPI). */
  async detachNic(mac: string): Promise<void> {
    await virshOn(this.host, 'detach-interface', this.name, 'bridge', '--mac', mac, '--live');
  }

  /** `virsh destroy` (the domain is transient: it is gone). Never throws. */
  async destroy(): Promise<void> {
    this.channel?.close();
    await execa('virsh', ['-q', '-c', this.host.uri, 'destroy', this.name], { reject: false, timeout: 30_000 });
  }
}

/** The guests of one test file: boot them, and destroy them all at the end. */
export class Guests {
  private readonly guests: Guest[] = [];
  private readonly leases: number[] = [];

  /** `workDir` holds the domain XML and console logs; it must be readable by libvirt (0755). */
  constructor(
    private readonly workDir: string,
    /** The libvirtd to boot them on (default: the system's). */
    private readonly host: GuestHost = SYSTEM,
  ) {}

  /** Boot a guest; unless `wait: 'none'`, resolve once it is ready (and leased, with dhcp). */
  async boot(options: GuestOptions): Promise<Guest> {
    if (!NAME.test(options.name)) throw new Error(`guest name: expected [A-Za-z0-9_.-], found ${options.name}`);
    const [image, key] = await Promise.all([guestImage(), options.ssh === true ? labSshKey() : undefined, sweep()]);
    const guest = new Guest(
      options.name,
      options.nic.mac,
      join(this.workDir, `${options.name}.console`),
      this.workDir,
      this.host,
    );
    const xml = domainXml(options, image, guest.consoleFile, guestCmdline(options, key?.publicKey));
    const file = join(this.workDir, `${options.name}.xml`);
    await writeFile(file, xml);
    this.guests.push(guest);
    const started = Date.now();
    await virshOn(this.host, 'create', file);
    const createMs = Date.now() - started;
    await guest.connect();
    if (options.wait === 'none') return guest;

    const net = options.net ?? 'dhcp';
    if (net === 'dhcp') {
      const lease = await guest.waitFor(/^TN:(LEASE eth0 (\S+)|NOLEASE eth0)/m, 60_000);
      if (lease[2] === undefined)
        throw new Error(`guest ${guest.name}: no DHCP lease at boot:\n${tail(await guest.console())}`);
      guest.leaseMs = Date.now() - started;
      guest.ip = lease[2];
      this.leases.push(guest.leaseMs);
      recordBoot(guest.name, guest.leaseMs);
    } else if (net !== 'none') {
      guest.ip = net.address.split('/')[0];
    }
    await guest.waitFor(/^TN:READY/m, 60_000);
    console.log(
      `guest ${guest.name}: virsh create ${(createMs / 1000).toFixed(2)} s` +
        (guest.leaseMs === undefined ? '' : `, boot to lease ${(guest.leaseMs / 1000).toFixed(1)} s`) +
        `, ready ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return guest;
  }

  /** Destroy every guest booted here (also those whose boot failed half-way), and print their boot-to-lease times. */
  async destroyAll(): Promise<void> {
    await Promise.all(this.guests.splice(0).map((g) => g.destroy()));
    if (this.leases.length > 0) console.log(`guests: ${describeTimes(this.leases.splice(0))}`);
  }
}

/** Appended to the file the summary reporter names, so the whole run's median is printed at its end. */
function recordBoot(name: string, leaseMs: number): void {
  const file = process.env.TICRYPT_GUEST_BOOTS;
  if (file) appendFileSync(file, `${JSON.stringify({ name, leaseMs })}\n`);
}

function domainXml(
  options: GuestOptions,
  image: { kernel: string; initrd: string },
  consoleFile: string,
  cmdline: string,
): string {
  return `<domain type='qemu'>
  <name>${attr(options.name)}</name>
${options.uuid === undefined ? '' : `  <uuid>${attr(options.uuid)}</uuid>\n`}  <description>${DESCRIPTION} ${process.pid}</description>
  <memory unit='MiB'>${options.memoryMiB ?? 128}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${attr(image.kernel)}</kernel>
    <initrd>${attr(image.initrd)}</initrd>
    <cmdline>${attr(cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${guestNicXml(options.nic).replace(/^/gm, '    ').trimEnd()}
    <serial type='pty'><log file='${attr(consoleFile)}' append='off'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='tn.agent'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

let swept: Promise<void> | undefined;
/** Once per process: destroy lab guests whose test process is gone (killed before its afterAll ran). */
function sweep(): Promise<void> {
  swept ??= (async () => {
    const names = (await virsh('list', '--name')).stdout.split('\n').filter(Boolean);
    for (const name of names) {
      const desc = (await execa('virsh', [...VIRSH, 'desc', name], { reject: false })).stdout;
      const pid = new RegExp(`^${DESCRIPTION} (\\d+)$`).exec(desc.trim())?.[1];
      if (pid !== undefined && !(await alive(Number(pid)))) {
        console.log(`destroying lab guest ${name}: its test process ${pid} is gone`);
        await execa('virsh', [...VIRSH, 'destroy', name], { reject: false });
      }
    }
  })();
  return swept;
}

function tail(text: string, lines = 25): string {
  return text.split('\n').slice(-lines).join('\n');
}
