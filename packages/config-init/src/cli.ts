/**
 * The `config-init` bin: the only module that touches `process`. It sets
 * `process.exitCode` (never calls `process.exit()`, so stderr is flushed first).
 */
import { main } from './index.js';

main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, signals: process, uid: process.geteuid?.() }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`config-init: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
