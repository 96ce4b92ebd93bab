/**
 * How full the conntrack table of the backend's namespace is:
 * `nf_conntrack_count` and `nf_conntrack_max` under /proc/sys/net/netfilter,
 * which show the namespace of the process reading them. Two small file reads,
 * whatever the number of flows. May not: write either.
 */
import { readFile } from 'node:fs/promises';
import { ProgramOutputError } from '../errors/program-output-error.js';

/** The conntrack table's entries now and its limit. */
export interface ConntrackFill {
  readonly count: number;
  readonly max: number;
}

/** Where the kernel shows them. */
export const CONNTRACK_SYSCTL_DIR = '/proc/sys/net/netfilter';

function parseCount(file: string, text: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProgramOutputError(file, 'a non-negative integer', text);
  }
  return value;
}

/**
 * Read the conntrack table's fill.
 *
 * @param read how a file is read (tests give their own).
 * @throws when a file is absent (no conntrack in this kernel yet) or holds no integer (`E_PROGRAM_OUTPUT`).
 */
export async function readConntrackFill(
  read: (path: string) => Promise<string> = (path) => readFile(path, 'utf8'),
  dir = CONNTRACK_SYSCTL_DIR,
): Promise<ConntrackFill> {
  const [count, max] = await Promise.all(
    ['nf_conntrack_count', 'nf_conntrack_max'].map(async (name) =>
      parseCount(`${dir}/${name}`, await read(`${dir}/${name}`)),
    ),
  );
  return { count: count ?? 0, max: max ?? 0 };
}
