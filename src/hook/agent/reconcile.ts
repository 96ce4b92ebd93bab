/**
 * `host reconcile`: the level-triggered backstop to the edge-triggered hook,
 * sending the backend every managed NIC running on this host. Runs from the
 * sync timer or an operator, never inside a hook call: it lists domains through
 * libvirt, and libvirt waits for its hooks (a deadlock).
 */
import { BackendRequestError } from '../../errors/backend-request-error.js';
import type { ErrorAnswer, ReconcileAnswer, ReconcileBody } from '../../protocol/api.js';
import type { Answer } from './client.js';
import type { HookConfig } from '../setup/config-types.js';
import { scanDomainXml } from './domain-scan.js';
import { type DeliveryContext, flushSpool, type FlushResult } from './deliver.js';
import { describeNic, type HookNic } from './events.js';
import { nextGeneration, readGeneration } from './generation.js';
import { managedNics } from './nics.js';
import { DEFAULT_LIBVIRT_URI } from '../../names.js';

/** The outcome of `ticrypt-net host reconcile`. */
export interface ReconcileReport {
  readonly generation: number;
  /** The managed NICs of the running domains, as sent. */
  readonly nics: readonly HookNic[];
  readonly added: number;
  readonly removed: number;
  readonly conflicts: readonly HookNic[];
  /** Spooled events older than the reconcile, dropped as superseded by it. */
  readonly superseded: number;
  /** How many times it was sent (a concurrent hook event makes it start over). */
  readonly attempts: number;
  readonly flush: FlushResult;
  /** Domains whose XML could not be read, or managed NICs that could not be reported. */
  readonly problems: readonly string[];
}

/**
 * Send the backend this host's full state: every managed NIC of every running
 * domain, from `listDomainXml` (libvirt, outside any hook).
 *
 * Order matters: the generation is taken before the domains are listed, so a
 * VM started meanwhile registers with a newer generation that the reconcile
 * will not undo. A VM stopped meanwhile may be listed; so when any hook event
 * took a generation while the reconcile was under way, it starts over (at
 * most three times). Spooled events older than a completed reconcile are
 * superseded by it and dropped; the spool is flushed first anyway.
 *
 * @throws {BackendRequestError} `E_BACKEND_UNREACHABLE` or `E_BACKEND_REFUSED`.
 */
export async function reconcileHost(
  config: HookConfig,
  context: DeliveryContext,
  listDomainXml: () => Promise<string[]>,
): Promise<ReconcileReport> {
  const flush = await flushSpool(context);
  for (let attempt = 1; ; attempt++) {
    const generation = nextGeneration(config.spoolDir);
    const problems: string[] = [];
    const nics: HookNic[] = [];
    for (const xml of await listDomainXml()) {
      try {
        const found = managedNics(scanDomainXml(xml), config);
        nics.push(...found.nics.map((m) => m.nic));
        problems.push(...found.problems.map((p) => p.message));
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    const body: ReconcileBody = { generation, nics };
    let answer: Answer;
    try {
      answer = await context.transport('/v1/reconcile', body, context.requestMs);
    } catch (error) {
      throw new BackendRequestError(
        'E_BACKEND_UNREACHABLE',
        `Backend unreachable: reconcile: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const answered = (answer.body ?? {}) as Partial<ReconcileAnswer> & Partial<ErrorAnswer>;
    if (answer.status !== 200) {
      throw new BackendRequestError(
        'E_BACKEND_REFUSED',
        `Backend refused reconcile (${answer.status}): ${answered.error?.message ?? 'no message'}`,
        { status: answer.status, ...(answered.error?.code === undefined ? {} : { backendCode: answered.error.code }) },
      );
    }
    const concurrent = readGeneration(config.spoolDir) > generation;
    if (concurrent && attempt < 3) continue;
    let superseded = 0;
    if (!concurrent) {
      for (const entry of context.spool.list()) {
        if (entry.event.generation < generation) {
          context.spool.remove(entry);
          superseded++;
          context.log.info(
            `reconcile: dropped spooled ${entry.event.op} ${describeNic(entry.event.nic)} generation ${entry.event.generation}: superseded`,
          );
        }
      }
    }
    const conflicts = answered.conflicts ?? [];
    for (const nic of conflicts) context.log.error(`reconcile: ${describeNic(nic)}: MAC held by another VM`);
    return {
      generation,
      nics,
      added: answered.added?.length ?? 0,
      removed: answered.removed?.length ?? 0,
      conflicts,
      superseded,
      attempts: attempt,
      flush,
      problems,
    };
  }
}

/**
 * The XML of every running domain, through libvirt's API (`@unraid/libvirt`).
 * Never call this from a hook: libvirt waits for the hook, the hook for libvirt.
 */
export async function listRunningDomainXml(uri = DEFAULT_LIBVIRT_URI): Promise<string[]> {
  const { Hypervisor, ConnectListAllDomainsFlags } = await import('@unraid/libvirt');
  const hypervisor = new Hypervisor({ uri });
  await hypervisor.connectOpen();
  try {
    const domains = await hypervisor.connectListAllDomains(ConnectListAllDomainsFlags.ACTIVE);
    const xmls: string[] = [];
    for (const domain of domains) {
      try {
        xmls.push(await hypervisor.domainGetXMLDesc(domain));
      } catch {
        // Stopped between listing and reading: not running, nothing to report.
      }
    }
    return xmls;
  } finally {
    await hypervisor.connectClose();
  }
}
