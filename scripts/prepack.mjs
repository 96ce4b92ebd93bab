// Run by `npm pack` / `npm publish` before packing (package.json "prepack"): refuse to pack a
// package without its build (the CLI, the library, the hook's bundle): `npm run build && npm pack`.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const built of ['dist/cli/main.js', 'dist/index.js', 'dist/hook/hook.cjs', 'dist/hook/hook-config.cjs']) {
  if (!existsSync(join(root, built))) {
    process.stderr.write(`prepack: ${built} is missing: run npm run build first\n`);
    process.exit(1);
  }
}
