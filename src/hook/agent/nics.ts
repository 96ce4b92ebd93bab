/**
 * Which NICs of a domain this host reports: those on a network `hook.yaml`
 * manages, each as the API accepts it (VM name made safe). Pure. Used by the
 * hook call and by reconcile. May not: do I/O.
 */
import { createHash } from 'node:crypto';
import type { HookConfig, HookNetwork } from '../setup/config-types.js';
import type { HookDomain } from './domain-scan.js';
import type { HookNic } from './events.js';

/** What the API accepts as a VM name. */
const API_VM_NAME = /^[A-Za-z0-9_.+:@-]{1,128}$/;

/**
 * The VM name as the backend API accepts it. A libvirt name that already fits
 * (`[A-Za-z0-9_.+:@-]{1,128}`) is kept; any other has each other character
 * replaced by `_`, is cut to 119 characters and gets `+` and 8 hex digits of
 * the SHA-256 of the original name appended, so distinct names stay distinct
 * in logs. The name is only a label: the backend keys VMs by UUID.
 *
 * @example apiVmName('research vm é') // 'research_vm__+5c1d0e9a'
 */
export function apiVmName(name: string | undefined): string {
  if (name === undefined || name === '') return 'unnamed';
  if (API_VM_NAME.test(name)) return name;
  const digest = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${[...name]
    .map((c) => (/^[A-Za-z0-9_.+:@-]$/.test(c) ? c : '_'))
    .join('')
    .slice(0, 119)}+${digest}`;
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A NIC on a managed network that the hook acts on. */
export interface ManagedNic {
  readonly nic: HookNic;
  readonly network: HookNetwork;
  /** Its OVS bridge, when known: hook.yaml's for the network, else the XML's (`<source bridge>`, live form). */
  readonly bridge?: string;
}

/** A NIC on a managed network that cannot be registered (no MAC, no VM UUID). */
export interface NicProblem {
  readonly network: HookNetwork;
  readonly message: string;
}

/**
 * The NICs of a domain that are on networks the hook manages: by
 * `<source network=...>` when the interface names one (configured and live
 * form), else by `<source bridge=...>` (an interface straight on a managed
 * bridge). Every other NIC is ignored. A managed NIC without a valid MAC, or
 * a domain without a valid UUID, is a problem, not a guess.
 */
export function managedNics(domain: HookDomain, config: HookConfig): { nics: ManagedNic[]; problems: NicProblem[] } {
  const nics: ManagedNic[] = [];
  const problems: NicProblem[] = [];
  const seen = new Set<string>();
  const vmName = apiVmName(domain.name);
  domain.nics.forEach((nic, index) => {
    const network =
      nic.network !== undefined
        ? config.networks.find((n) => n.name === nic.network)
        : nic.bridge !== undefined
          ? config.networks.find((n) => n.bridge === nic.bridge)
          : undefined;
    if (!network) return;
    const where = `interface ${index + 1} of vm=${vmName} on network=${network.name}`;
    if (nic.mac === undefined) {
      problems.push({ network, message: `${where} has no valid unicast MAC: cannot register it` });
      return;
    }
    if (domain.uuid === undefined || !UUID.test(domain.uuid)) {
      problems.push({
        network,
        message: `${where} (mac=${nic.mac}): the domain has no valid <uuid>, found ${JSON.stringify(domain.uuid ?? null)}`,
      });
      return;
    }
    const key = `${network.name}/${nic.mac}`;
    if (seen.has(key)) return;
    seen.add(key);
    const bridge = network.bridge ?? nic.bridge;
    nics.push({
      network,
      nic: { vmUuid: domain.uuid.toLowerCase(), vmName, mac: nic.mac, network: network.name },
      ...(bridge === undefined ? {} : { bridge }),
    });
  });
  return { nics, problems };
}
