import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord, FlowRecord } from '../../../src/backend/audit/record.js';
import { type AuditStoreSettings, DEFAULT_AUDIT_STORE } from '../../../src/site/audit-store.js';

/** The uuid of test VM `n`. */
export const vmUuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/**
 * A flow record of VM `vm`, ending at `end` (ISO ms or micros), `bytes` out
 * and ten times that in; `vary` replaces whole fields (ports, bytes, times).
 */
export function flow(
  vm: number,
  end = '2026-12-01T10:00:00.000000Z',
  bytes = 1000,
  vary: Partial<Pick<FlowRecord, 'src' | 'dst' | 'start' | 'bytes' | 'packets'>> = {},
): AuditRecord {
  return {
    v: 1,
    kind: 'flow',
    vm: {
      uuid: vmUuid(vm),
      name: `vm-${vm}`,
      mac: '52:54:00:00:00:01',
      ip: '192.168.129.10',
      network: 'secure',
      host: 'kvm1',
    },
    proto: 'tcp',
    src: { ip: '192.168.129.10', port: 40000 + vm },
    dst: { ip: '198.51.100.11', port: 443 },
    start: end.replace(/T\d\d/, 'T09'),
    end,
    bytes: { out: bytes, in: bytes * 10 },
    packets: { out: 10, in: 20 },
    admittedBy: { kind: 'allow', entry: '0: 198.51.100.0/24 tcp/443' },
    ...vary,
  } as AuditRecord;
}

/** A fresh directory and settings pointing there; `cleanup` removes it. */
export async function tempStore(
  overrides: Partial<AuditStoreSettings> = {},
): Promise<{ dir: string; settings: AuditStoreSettings; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'audit-store-'));
  const dir = join(root, 'audit');
  return {
    dir,
    settings: { ...DEFAULT_AUDIT_STORE, dir, ...overrides },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** A settable clock. */
export function clock(start: string): { now: () => Date; set: (iso: string) => void } {
  let time = new Date(start);
  return { now: () => time, set: (iso) => (time = new Date(iso)) };
}
