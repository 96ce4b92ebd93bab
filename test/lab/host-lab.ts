/**
 * Lab fixtures for host set-up tests: prefixed site files, stand-ins for
 * VLAN interfaces and bonds (veths), and a cleanup that removes exactly
 * what a test created (networks, bridges, links, namespaces), by name.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const VIRSH = ['-c', 'qemu:///system'] as const;

/** What a lab test created, removed in reverse by {@link LabResources.cleanup}. */
export class LabResources {
  readonly networks: string[] = [];
  readonly bridges: string[] = [];
  readonly links: string[] = [];
  readonly namespaces: string[] = [];
  readonly dirs: string[] = [];

  async tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'ticrypt-host-lab-'));
    this.dirs.push(dir);
    return dir;
  }

  /** A root-namespace veth pair, both ends up, tx checksum offload off (LAB.md). */
  async veth(a: string, b: string, options: { bNetns?: string } = {}): Promise<void> {
    const where = options.bNetns === undefined ? [] : ['netns', options.bNetns];
    await execa('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b, ...where]);
    this.links.push(a);
    const inB = (args: string[]) =>
      options.bNetns === undefined ? execa('ip', args) : execa('ip', ['netns', 'exec', options.bNetns, 'ip', ...args]);
    await execa('ethtool', ['-K', a, 'tx', 'off'], { reject: false });
    if (options.bNetns === undefined) await execa('ethtool', ['-K', b, 'tx', 'off'], { reject: false });
    else await execa('ip', ['netns', 'exec', options.bNetns, 'ethtool', '-K', b, 'tx', 'off'], { reject: false });
    await execa('ip', ['link', 'set', a, 'up']);
    await inB(['link', 'set', b, 'up']);
  }

  async netns(name: string): Promise<void> {
    await execa('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await execa('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  }

  async cleanup(): Promise<void> {
    for (const network of this.networks) {
      await execa('virsh', [...VIRSH, 'net-destroy', network], { reject: false });
      await execa('virsh', [...VIRSH, 'net-undefine', network], { reject: false });
    }
    for (const bridge of this.bridges) await execa('ovs-vsctl', ['--if-exists', 'del-br', bridge], { reject: false });
    for (const link of this.links) await execa('ip', ['link', 'del', link], { reject: false });
    for (const ns of this.namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

/** A lab network: prefixed names, a VLAN, and the preset it starts from. */
export interface LabNetwork {
  readonly name: string;
  readonly preset: 'secure' | 'service' | 'datain';
  readonly bridge: string;
  readonly mode: 'vlan' | 'trunk';
}

/** A site file for one lab host (its uplink override names the stand-in parent). */
export function labSiteYaml(siteName: string, host: string, uplink: string, networks: readonly LabNetwork[]): string {
  const lines = [`name: ${siteName}`, 'hosts:', `  ${host}: { uplink: ${uplink} }`, 'networks:'];
  for (const n of networks) {
    lines.push(`  ${n.name}:`, `    preset: ${n.preset}`, `    bridge: ${n.bridge}`, `    uplink: { mode: ${n.mode} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** Write a site file into `dir` and register its networks and bridges for cleanup. */
export async function writeLabSite(
  lab: LabResources,
  dir: string,
  file: string,
  yaml: string,
  networks: readonly LabNetwork[],
  extraBridges: readonly string[] = [],
): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, yaml);
  for (const n of networks) {
    lab.networks.push(n.name);
    lab.bridges.push(n.bridge);
  }
  lab.bridges.push(...extraBridges);
  return path;
}

/** ovs-vsctl, checked. */
export async function vsctl(...args: string[]): Promise<string> {
  return (await execa('ovs-vsctl', ['--timeout=10', ...args])).stdout;
}

/** `ping -c 1` from a namespace, retried up to `tries` times; whether a reply came. */
export async function pings(ns: string, address: string, tries = 3): Promise<boolean> {
  for (let i = 0; i < tries; i += 1) {
    const result = await execa('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', address], { reject: false });
    if (result.exitCode === 0) return true;
  }
  return false;
}
