/**
 * The quick start (`pnpm demo` runs examples/demo.mjs on the built packages): it ends
 * with the next steps, removes its folder (the development CA's private key is in it)
 * unless asked to keep it, and writes no ANSI codes when its output is not a terminal.
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, machineEnv, outsideCheckout, runCli } from '#helpers';

const DEMO = path.join(REPO_ROOT, 'examples', 'demo.mjs');

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e = machineEnv();
  delete e.NO_COLOR;
  return { ...e, ...extra };
}

describe('examples/demo.mjs', () => {
  it('ends with the next steps, removes its folder and prints no ANSI codes into a pipe', async () => {
    const cwd = outsideCheckout('demo-run-');
    const r = await runCli(process.execPath, [DEMO], { cwd, env: env() });
    rmSync(cwd, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('\x1b');
    const removed = /^Removed (\S+) \(it held the development CA's private key\); run with --keep \(or DEMO_KEEP=1\) to keep it\.$/m.exec(r.stdout);
    expect(removed, r.stdout).not.toBeNull();
    expect(existsSync(removed![1]!)).toBe(false);
    const next = r.stdout.slice(r.stdout.indexOf('\nNext steps\n'));
    expect(next).toContain('config-service validate <your-config-repo>');
    expect(next).toContain('config-service pki init --dir pki');
    expect(next).toContain('config-init fetch --server https://localhost:8443');
    expect(next).toContain('Documentation: README.md');
    expect(r.stdout.trimEnd().endsWith('docs/security.md for identities, tokens and policy.')).toBe(true);
  }, 180_000);

  it('--keep keeps the folder and says where (and that it holds the CA key)', async () => {
    const cwd = outsideCheckout('demo-run-');
    const r = await runCli(process.execPath, [DEMO, '--keep'], { cwd, env: env({ NO_COLOR: '1' }) });
    rmSync(cwd, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(0);
    const kept = /^Kept everything in (\S+)\n\(pki\/ holds the development CA's private key: remove the folder when you are done: rm -rf \1\)$/m.exec(r.stdout);
    expect(kept, r.stdout).not.toBeNull();
    try {
      expect(existsSync(path.join(kept![1]!, 'pki', 'ca.key'))).toBe(true);
    } finally {
      rmSync(kept![1]!, { recursive: true, force: true });
    }
    expect(r.stdout).not.toContain('\x1b');
  }, 180_000);
});
