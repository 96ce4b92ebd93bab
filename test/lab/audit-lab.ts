/**
 * The flow-audit lab (issue 16) the audit lab tests build
 * on a {@link BackendLab}: `backend serve --audit --audit-records <dir>` (or
 * the caller's own, changing, serve arguments), conntrack's close timeouts cut
 * to 1 s in the backend (end events right after a close; production keeps the
 * kernel's), optionally a load generator's sysctls in the VMs, a VM's
 * registration and eth0, nginx in a namespace, and reads of the store's
 * records and of /metrics (no test runner needed: bench/audit.ts builds on it too). `remove()` ends what it started (by pid), ulogd
 * included, and deletes its directories.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { queryAudit } from '../../src/backend/audit/query.js';
import { AuditRecord } from '../../src/backend/audit/record.js';
import { auditFiles } from '../../src/backend/audit/service.js';
import { stopUlogd } from '../../src/backend/audit/ulogd-process.js';
import { API_URL, BackendLab, type BackendLabOptions } from './backend-lab.js';
import { configure } from './probes.js';

/** The conntrack TCP states whose timeout the lab cuts to 1 s. */
const CLOSE_STATES = ['time_wait', 'fin_wait', 'close_wait', 'last_ack', 'close'] as const;

/** What to build: a backend lab's options (its `serveArgs` default to auditing into a fresh records directory). */
export interface AuditLabOptions<V extends string> extends BackendLabOptions<V> {
  /** VMs that open connections as fast as they can: ports reused soon after a close, as many as the range holds. */
  readonly loadVms?: readonly V[];
}

/** A child the lab started in a namespace, ended by its pid in {@link AuditLab.remove}. */
export type LabChild = ReturnType<typeof spawnIn>;

function spawnIn(ns: string, program: string, args: readonly string[]) {
  return execa('ip', ['netns', 'exec', ns, program, ...args], { reject: false, stdin: 'ignore' });
}

/** A built audit lab. */
export class AuditLab<V extends string> {
  private readonly children: LabChild[] = [];
  private readonly dirs: string[] = [];

  private constructor(
    /** The backend lab underneath. */
    readonly lab: BackendLab<V>,
    /** The records directory (`--audit-records`). */
    readonly recordsDir: string,
  ) {
    this.dirs.push(recordsDir);
  }

  /**
   * Build the backend lab with auditing on (unless `options.serveArgs` is
   * given: then exactly those, which the caller may change between service
   * starts), cut the backend's conntrack close timeouts, and set the load
   * VMs' sysctls. The service is started by {@link startService}.
   */
  static async create<V extends string>(prefix: string, options: AuditLabOptions<V>): Promise<AuditLab<V>> {
    const recordsDir = await mkdtemp(join(tmpdir(), `ticrypt-${prefix}-records-`));
    let lab: BackendLab<V>;
    try {
      lab = await BackendLab.create(prefix, {
        ...options,
        serveArgs: options.serveArgs ?? ['--audit', '--audit-records', recordsDir],
      });
    } catch (error) {
      await rm(recordsDir, { recursive: true, force: true });
      throw error;
    }
    const audit = new AuditLab(lab, recordsDir);
    try {
      // End events right after a close (production keeps the kernel's timeouts).
      for (const key of CLOSE_STATES)
        await lab.backend.run('sysctl', ['-qw', `net.netfilter.nf_conntrack_tcp_timeout_${key}=1`]);
      for (const vm of options.loadVms ?? []) {
        await lab.vm[vm].run('sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1']);
        await lab.vm[vm].run('sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
      }
    } catch (error) {
      await audit.remove();
      throw error;
    }
    return audit;
  }

  /** The audit directory of the service (ulogd's config, outputs, pid file). */
  get files(): ReturnType<typeof auditFiles> {
    return auditFiles(join(this.lab.paths.state, 'flow-audit'));
  }

  /** Start the service (see {@link BackendLab.startService}). */
  startService(ms?: number) {
    return this.lab.startService(ms);
  }

  /**
   * Place lab VM `name` on kvm-1 and register its NIC there (as `vm-<name>`),
   * then give its eth0 the address (/17) and the network's gateway as default
   * route: the address and the whole answer.
   */
  async registerVm(name: V, generation = 1): Promise<{ ip: string; json: any }> {
    const { network, mac, vm: vmUuid } = this.lab.labVm(name);
    if (vmUuid !== undefined) await this.lab.place(vmUuid, ['kvm-1']);
    const { status, json } = await this.lab.call('POST', '/v1/register', 'kvm-1', {
      vmUuid,
      vmName: `vm-${name}`,
      mac,
      network,
      generation,
    });
    if (status !== 200) throw new Error(`register vm-${name}: expected 200, got ${status} ${JSON.stringify(json)}`);
    const ip = json.ip as string;
    await configure(this.lab.vm[name], 'eth0', `${ip}/17`, this.lab.network(network).gateway);
    return { ip, json };
  }

  /** Run `program` in namespace `ns` as the lab's child (stdin closed, never rejecting). */
  spawn(ns: string, program: string, args: readonly string[]): LabChild {
    const child = spawnIn(ns, program, args);
    this.children.push(child);
    return child;
  }

  /**
   * nginx in `ns` (foreground, two workers, no access log) answering every
   * request on `listen` (`address:port`) with 1 byte and closing the
   * connection; fails unless it still runs 500 ms later. (Resolves to nothing: an async function returning
   * the child would wait for it to exit.)
   */
  async startNginx(ns: string, listen: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), `ticrypt-${this.lab.prefix}-nginx-`));
    this.dirs.push(dir);
    const config = [
      'worker_processes 2;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      '  keepalive_timeout 0;',
      `  server { listen ${listen} backlog=4096; location / { return 200 "x"; } }`,
      '}',
    ].join('\n');
    await writeFile(join(dir, 'nginx.conf'), `${config}\n`);
    const child = this.spawn(ns, 'nginx', ['-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
    await sleep(500);
    if (child.exitCode !== null) throw new Error(`nginx in ${ns} exited: ${String((await child).stderr)}`);
  }

  /** Every producer record in the store's day files, in chain order. */
  async records(): Promise<AuditRecord[]> {
    const all: AuditRecord[] = [];
    for await (const hit of queryAudit(this.recordsDir, {})) {
      const parsed = AuditRecord.safeParse(hit.stored.rec);
      if (parsed.success) all.push(parsed.data);
    }
    return all;
  }

  /**
   * Poll the records (every 200 ms, up to `ms`) until `find` returns
   * something; throws with the records and the backend's conntrack table.
   */
  async waitFor<T>(what: string, find: (all: AuditRecord[]) => T | undefined, ms = 100_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = find(await this.records());
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        const conntrack = await this.lab.backend
          .run('conntrack', ['-L', '-o', 'extended'])
          .catch((e: Error) => e.message);
        throw new Error(
          `no ${what} within ${ms} ms: ${JSON.stringify(await this.records())}\nconntrack: ${typeof conntrack === 'string' ? conntrack : conntrack.stdout}`,
        );
      }
      await sleep(200);
    }
  }

  /** The service's /metrics text (token `prometheus`). */
  async metrics(): Promise<string> {
    const response = await fetch(`${API_URL}/metrics`, {
      headers: { authorization: `Bearer ${this.lab.tokens.prometheus}` },
    });
    return response.text();
  }

  /** The first capture of `pattern` in /metrics as a number (0 when absent, as a series is until its first count). */
  async metric(pattern: RegExp): Promise<number> {
    return Number(pattern.exec(await this.metrics())?.[1] ?? 0);
  }

  /** Every `ticrypt_audit_lost_total` series, by how. */
  async lost(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const m of (await this.metrics()).matchAll(/ticrypt_audit_lost_total\{how="([^"]+)"\} (\d+)/g))
      out[m[1]!] = Number(m[2]);
    return out;
  }

  /** End the children (TERM, then KILL after 3 s), the services and ulogd, the lab, and the directories. */
  async remove(): Promise<void> {
    for (const child of this.children) child.kill('SIGTERM');
    await Promise.race([Promise.all(this.children), sleep(3000)]);
    for (const child of this.children) child.kill('SIGKILL');
    for (const service of this.lab.services) await service.stop().catch(() => undefined);
    await stopUlogd(this.files.pid).catch(() => undefined);
    await this.lab.remove();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}
