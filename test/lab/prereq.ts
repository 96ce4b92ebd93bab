import { execFileSync } from 'node:child_process';

/**
 * Whether the lab prerequisites are here: root, and every named program on PATH.
 *
 * On a workstation without them, lab tests skip loudly (one line on stderr
 * naming what is missing). Under CI=true a missing prerequisite throws, so the
 * run fails instead of passing on nothing.
 *
 * @example
 * const lab = labAvailable('nft', 'ip');
 * describe.skipIf(!lab)('nft apply', () => { ... });
 */
export function labAvailable(...programs: string[]): boolean {
  return prerequisites(programs, true);
}

/**
 * Like {@link labAvailable} for tests that need programs (virsh, xmllint, ...)
 * but not root.
 */
export function programsAvailable(...programs: string[]): boolean {
  return prerequisites(programs, false);
}

function prerequisites(programs: readonly string[], root: boolean): boolean {
  const missing: string[] = [];
  if (root && process.getuid?.() !== 0) missing.push('root');
  for (const program of programs) {
    try {
      execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    } catch {
      missing.push(program);
    }
  }
  if (missing.length === 0) return true;
  const message = `lab prerequisites missing: ${missing.join(', ')} (see ../shared/LAB.md and .ci/run)`;
  if (process.env.CI === 'true') throw new Error(message);
  process.stderr.write(`SKIPPING tests: ${message}\n`);
  return false;
}
