// Bundles src/cli.ts into one dependency-free ESM file, dist/config-init.mjs (SPEC §7, §11:
// one file, only node: built-ins, nothing loaded at start-up that the run does not use).
import { build } from 'esbuild';
import { chmod, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const pkg = JSON.parse(await readFile(here('./package.json'), 'utf8'));
const outfile = here('./dist/config-init.mjs');

await build({
  entryPoints: [here('./src/cli.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  define: { __CONFIG_INIT_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
