import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** A minimal domain around some `<interface>` elements, as the VM launcher would build it. */
export function minimalDomain(name: string, interfaces: readonly string[]): string {
  return `<domain type="qemu">
  <name>${name}</name>
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os><type arch="x86_64" machine="pc">hvm</type></os>
  <devices>
${interfaces.join('')}  </devices>
</domain>
`;
}

/**
 * Judge XML with libvirt's own tools: `virt-xml-validate` (RelaxNG schemas)
 * for each document, then libvirt's parser through the in-process test driver
 * (`virsh -c test:///default net-define` / `define`), all in one virsh run.
 * Resolves with the failures (empty when libvirt accepts everything).
 */
export async function libvirtRejects(documents: {
  networks: readonly string[];
  domains: readonly string[];
}): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ticrypt-xml-'));
  try {
    const failures: string[] = [];
    const commands: string[] = [];
    const files: [string, 'network' | 'domain'][] = [];
    for (const [kind, list] of [
      ['network', documents.networks],
      ['domain', documents.domains],
    ] as const) {
      for (const [i, xml] of list.entries()) {
        const file = join(dir, `${kind}-${i}.xml`);
        await writeFile(file, xml);
        files.push([file, kind]);
        commands.push(`${kind === 'network' ? 'net-define' : 'define'} ${file}`);
      }
    }
    for (const [file, kind] of files) {
      const result = await execa('virt-xml-validate', [file, kind], { reject: false, all: true });
      if (result.exitCode !== 0) failures.push(`virt-xml-validate ${kind}: ${result.all}`);
    }
    const result = await execa('virsh', ['-q', '-c', 'test:///default', commands.join(' ; ')], {
      reject: false,
      all: true,
    });
    if (result.exitCode !== 0 || /error/i.test(result.all ?? '')) failures.push(`virsh test driver: ${result.all}`);
    return failures;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
