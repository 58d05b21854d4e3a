/**
 * `config-init exec` against the REAL config-service over mTLS, as a process receives them
 * in a pod (SPEC §7): signals sent to config-init reach the command, and config-init exits
 * with the command's code, 128 + n when it died from signal n, 127/126 when it cannot be
 * started. Runs with the bundle and, with E2E_CONFIG_INIT=sea, with the single executable
 * (see helpers/init.ts).
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_INIT_BIN, CONFIG_INIT_SEA, INIT_BUILD, initCommand, makeCerts, makeGitRepo, runInit, spawnInit, startTestService, type ClientCert, type TestPki, type TestService } from '#helpers';

const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

let pki: TestPki;
let orders: ClientCert;
let service: TestService;
let work: string;

beforeAll(async () => {
  pki = await makeCerts('init-signals');
  orders = await pki.client('orders');
  const repo = await makeGitRepo({ 'orders/application.yml': 'feature:\n  enabled: true\n' }, { branch: 'main' });
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' } });
  work = mkdtempSync(path.join(os.tmpdir(), 'init-signals-'));
});
afterAll(async () => {
  await service?.close();
});

function execArgs(command: string[]): string[] {
  return ['exec', '--server', service.apiUrl, '--app', 'orders', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile, '--termination-log', '', '--deadline', '20000', '--', ...command];
}

async function waitForFile(file: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      statSync(file);
      return;
    } catch {
      if (Date.now() > until) throw new Error(`${file} never appeared`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** A Node.js child that traps `sig`, writes `ready` (and its pid), then waits; on `sig` it exits `exit`. */
const trap = (ready: string, sig: string, exit: number): string =>
  `process.on(${JSON.stringify(sig)}, () => process.exit(${exit})); require("fs").writeFileSync(${JSON.stringify(ready)}, String(process.pid)); setInterval(() => {}, 1000);`;

describe(`config-init exec (${INIT_BUILD}): signals and exit codes`, () => {
  it(`runs the ${INIT_BUILD} build of config-init`, () => {
    expect(initCommand()).toEqual(INIT_BUILD === 'sea' ? [CONFIG_INIT_SEA] : [process.execPath, CONFIG_INIT_BIN]);
  });

  it.each(FORWARDED.map((s, i) => [s, 40 + i] as const))('%s sent to config-init reaches the command; config-init exits with its code %i', async (sig, exit) => {
    const ready = path.join(work, `ready-${sig}`);
    const { child, done } = spawnInit(execArgs([process.execPath, '-e', trap(ready, sig, exit)]));
    await waitForFile(ready);
    child.kill(sig);
    const res = await done;
    expect(res.stderr).toMatch(new RegExp(`forwarded=${sig}`));
    expect(res.signal).toBeNull();
    expect(res.code).toBe(exit);
  });

  it('the command killed by SIGKILL → 137 (128 + 9)', async () => {
    const ready = path.join(work, 'ready-kill');
    const { done } = spawnInit(execArgs([process.execPath, '-e', trap(ready, 'SIGTERM', 1)]));
    await waitForFile(ready);
    process.kill(Number(readFileSync(ready, 'utf8')), 'SIGKILL');
    const res = await done;
    expect(res.code).toBe(137);
    expect(res.stderr).toMatch(/was killed by SIGKILL/);
  });

  it('the command\'s own exit code, with the configuration in its environment', async () => {
    const res = await runInit(execArgs([process.execPath, '-e', 'process.exit(process.env.FEATURE_ENABLED === "true" ? 3 : 4)']));
    expect(res.code).toBe(3);
  });

  it('a command that does not exist → 127; one that is not executable → 126', async () => {
    expect((await runInit(execArgs([path.join(work, 'no-such-program')]))).code).toBe(127);
    const notExecutable = path.join(work, 'not-executable.sh');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    expect((await runInit(execArgs([notExecutable]))).code).toBe(126);
  });

  it('a certificate for another application → 77, and the command is not started', async () => {
    const payments = await pki.client('payments');
    const marker = path.join(work, 'started');
    const res = await runInit(['exec', '--server', service.apiUrl, '--app', 'orders', '--cert', payments.certFile, '--key', payments.keyFile, '--ca', pki.caFile, '--termination-log', '', '--',
      process.execPath, '-e', `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`]);
    expect(res.code).toBe(77);
    expect(() => statSync(marker)).toThrow();
  });
});
