import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { TicryptNetError } from '../errors/ticrypt-net-error.js';
import { UsageError } from '../errors/usage-error.js';
import { checkBackend } from '../host/doctor/backend-checks.js';
import { gatherBackendFacts } from '../host/doctor/backend-facts.js';
import { checkHost } from '../host/doctor/host-checks.js';
import { gatherHostFacts } from '../host/doctor/host-facts.js';
import { readVmPortCounters, type VmPortCounters } from '../host/port-counters.js';
import { programRunner } from '../exec/run.js';
import { doctorExitCode, formatResults } from '../host/doctor/result.js';
import { DEFAULT_UPLINK_BRIDGE } from '../host/model.js';
import { withPackageUnit } from '../backend/setup/apply.js';
import { backendRunOptions } from './backend.js';
import { resolveHost } from '../host/this-host.js';
import { loadSite } from '../site/load.js';
import { runOptions } from './host.js';
import { optionalFlowSource } from './flow-source.js';
import { withConnect } from './options.js';
import { type CliIo, type GlobalOptions, toJson } from './io.js';
import { DEFAULT_HOOK_CONFIG, DEFAULT_STATE_DIR, LIBVIRT_HOOKS_DIR } from '../names.js';

interface DoctorOptions {
  site?: string;
  role: string;
  host?: string;
  json?: boolean;
  datapath: string;
  uplinkBridge: string;
  connect: string;
  hooksDir: string;
  hookConfig: string;
  stateDir: string;
  backendUrl?: string;
  adminTokenFile?: string;
  netns?: string;
  root: string;
  service: boolean;
}

/** Some doctor check failed: the results are already printed; this only sets the exit code. */
class DoctorFailedError extends TicryptNetError {
  constructor(failed: number) {
    super('E_DOCTOR_FAILED', `doctor: ${failed} check(s) failed`);
    this.name = 'DoctorFailedError';
  }
}

/** `ticrypt-net doctor`: check a host or the backend; each check OK, WARN or FAIL with its fix. Exit 1 on any FAIL. */
export function addDoctorCommand(program: Command, io: CliIo): void {
  withConnect(
    program
      .command('doctor')
      .description('Check this host (or the backend): each check OK, WARN or FAIL with the fix; exit 1 on any FAIL')
      .option('--site <file>', 'site file (YAML); default: the three preset networks')
      .option('--role <role>', "'host' (a KVM host) or 'backend'", 'host')
      .option('--host <name>', "this host's name in the site; default: the machine's hostname")
      .option('--json', 'machine-readable JSON output')
      .option('--datapath <type>', "expected datapath_type of the bridges: 'system' or 'netdev'", 'system')
      .option('--uplink-bridge <name>', 'the shared bridge of trunk-mode networks', DEFAULT_UPLINK_BRIDGE),
  )
    .option('--hooks-dir <dir>', "libvirt's hook directory", LIBVIRT_HOOKS_DIR)
    .option('--hook-config <file>', "the hook's configuration (backend URL, token file)", DEFAULT_HOOK_CONFIG)
    .option('--state-dir <dir>', "the backend's state directory (dnsmasq/<network>/dnsmasq.pid)", DEFAULT_STATE_DIR)
    .option('--backend-url <url>', 'backend API, to compare the store with the nft set (with --admin-token-file)')
    .option('--admin-token-file <file>', 'file holding an admin token')
    .option('--netns <name>', 'gather the backend facts inside this network namespace')
    .option('--root <dir>', "where the backend's files are (/etc/sysctl.d/, /etc/systemd/system/)", '/')
    .option('--no-service', "the backend's systemd unit is not checked (another service manager runs it)")
    .action(async (options: DoctorOptions) => {
      const json = options.json === true || program.opts<GlobalOptions>().json === true;
      const site = await loadSite(options.site);
      let results;
      // A host's VM ports with their counters (one ovs-vsctl read), in the JSON output only; absent without OVS.
      let vmPorts: VmPortCounters[] | undefined;
      if (options.role === 'host') {
        const host = resolveHost(site, options.host);
        // An invalid hook configuration is the hook checks' to report; the flows are then not checked.
        const flows = await optionalFlowSource(options.hookConfig).catch(() => undefined);
        const facts = await gatherHostFacts(site, {
          virshUri: options.connect,
          hooksDir: options.hooksDir,
          hookConfigFile: options.hookConfig,
          ...(flows === undefined ? {} : { flows }),
        });
        results = checkHost(site, host, facts, runOptions(options));
        if (json) vmPorts = await readVmPortCounters(programRunner()).catch(() => undefined);
      } else if (options.role === 'backend') {
        const token =
          options.adminTokenFile === undefined ? undefined : (await readFile(options.adminTokenFile, 'utf8')).trim();
        if ((token === undefined) !== (options.backendUrl === undefined)) {
          throw new UsageError('--backend-url and --admin-token-file: expected both or neither, found one');
        }
        const setup = await withPackageUnit(backendRunOptions(options));
        const facts = await gatherBackendFacts(site, {
          ...setup,
          stateDir: options.stateDir,
          ...(token === undefined || options.backendUrl === undefined
            ? {}
            : { api: { url: options.backendUrl, token } }),
        });
        results = checkBackend(site, facts, setup);
      } else {
        throw new UsageError(`--role: expected 'host' or 'backend', found ${JSON.stringify(options.role)}`);
      }
      const counts = { ok: 0, warn: 0, fail: 0 };
      for (const r of results) counts[r.status] += 1;
      io.out(
        json
          ? toJson({ role: options.role, ...counts, results, ...(vmPorts === undefined ? {} : { vmPorts }) })
          : `${formatResults(results)}${counts.ok} OK, ${counts.warn} WARN, ${counts.fail} FAIL\n`,
      );
      if (doctorExitCode(results) !== 0) throw new DoctorFailedError(counts.fail);
    });
}
