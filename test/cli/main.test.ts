import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const built = existsSync(bin);
if (!built && process.env.CI === 'true') throw new Error('dist/cli/main.js missing: `npm test` builds before testing');

describe.skipIf(!built)('the installed binary (dist/cli/main.js)', () => {
  it('renders, and sets the exit code', async () => {
    const ok = await execa('node', [bin, 'render', 'network', 'datain'], { reject: false });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain('<bridge name="br-datain"/>');
    const bad = await execa('node', [bin, 'render', 'network', 'nope'], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toBe('Unknown network "nope": expected one of secure, service, datain');
  });
});
