// Builds config-init as a Node.js single executable application (SEA) for linux-x64:
// dist/sea/config-init, one file that runs without Node.js installed (SPEC §7: "as a single
// executable (Node SEA) for application images without Node").
//
// Steps (https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html):
//   1. bundle src/cli.ts as CommonJS (Node 20's SEA runs one CommonJS script; the ESM
//      bundle dist/config-init.mjs is left as it is);
//   2. `node --experimental-sea-config` turns it into a preparation blob (with V8's code
//      cache, so start-up skips compiling the script);
//   3. copy the running `node` binary and inject the blob with postject, flipping the
//      NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 fuse.
// The result is as portable as the `node` binary it was made from: glibc-based Linux
// x64 (Debian, Ubuntu, RHEL, distroless/cc), not musl (Alpine).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

if (process.platform !== 'linux' || process.arch !== 'x64') {
  process.stderr.write(`build-sea: builds the linux-x64 executable only; this is ${process.platform}-${process.arch}\n`);
  process.exit(1);
}
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`build-sea: needs Node.js >= 20 (single executable applications); this is ${process.version}\n`);
  process.exit(1);
}
const node = await readFile(process.execPath);
if (!node.includes(FUSE)) {
  process.stderr.write(`build-sea: ${process.execPath} has no ${FUSE} sentinel: this node binary was built without single executable support (use an official build)\n`);
  process.exit(1);
}

const pkg = JSON.parse(await readFile(here('./package.json'), 'utf8'));
const dir = here('./dist/sea/');
const script = `${dir}config-init.cjs`;
const blob = `${dir}config-init.blob`;
const seaConfig = `${dir}sea-config.json`;
const exe = `${dir}config-init`;

await rm(dir, { recursive: true, force: true });
await mkdir(dir, { recursive: true });
await build({
  entryPoints: [here('./src/cli.ts')],
  outfile: script,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  define: { __CONFIG_INIT_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
});
await writeFile(seaConfig, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });

await copyFile(process.execPath, exe);
await chmod(exe, 0o755);
const { inject } = await import('postject');
await inject(exe, 'NODE_SEA_BLOB', await readFile(blob), { sentinelFuse: FUSE });
await Promise.all([rm(blob), rm(seaConfig)]);
process.stdout.write(`${exe}\n`);
