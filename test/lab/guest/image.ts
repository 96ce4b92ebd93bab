import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { execa } from 'execa';

/** The guest's kernel and initramfs, as `build.sh` left them in its cache. */
export interface GuestImage {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  /** `package=version` per line: what it was built from. */
  readonly manifest: string;
}

const BUILD = resolve(import.meta.dirname, 'build.sh');
let image: Promise<GuestImage> | undefined;

/**
 * Build the guest, or find it cached (test/lab/guest/build.sh: Debian's
 * packages, rebuilt only when they or the guest's files change). Once per
 * process; concurrent processes share the build through its lock.
 */
export function guestImage(): Promise<GuestImage> {
  image ??= (async () => {
    const build = await execa('bash', [BUILD], { timeout: 600_000, reject: false });
    if (build.exitCode !== 0) {
      image = undefined;
      throw new Error(`building the lab guest failed (exit ${build.exitCode}):\n${build.stderr}`);
    }
    if (build.stderr) process.stderr.write(`${build.stderr}\n`);
    const dir = build.stdout.trim();
    return {
      dir,
      kernel: `${dir}/vmlinuz`,
      initrd: `${dir}/initrd.gz`,
      manifest: await readFile(`${dir}/manifest`, 'utf8'),
    };
  })();
  return image;
}
