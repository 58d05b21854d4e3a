/**
 * `config-init watch` and `config-init exec --watch` end to end (issue 12): the real
 * bundled config-init as a child process, the real service mirroring a remote served by
 * the real `git http-backend` (polling off, so only a push webhook moves it), a real
 * application process, and an inotify watcher (`fs.watch`, which is inotify on Linux) on the
 * output folder. The service is reached through a TCP proxy the test can cut.
 *
 * Verdicts rest on counts and order (one swap, one SIGHUP, nothing for a commit that does
 * not touch the application), never on speed; the time from the webhook to the new set is
 * printed for the record (the issue asks for it to be within 2 s on a quiet machine).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeCerts,
  pushAndNotify as push,
  startGitRemote,
  startInit,
  startTcpProxy,
  startTestService,
  writeWebhookSecret,
  type ClientCert,
  type GitRemote,
  type GitTestRepo,
  type InitProcess,
  type TcpProxy,
  type TestPki,
  type TestService,
} from '#helpers';

const HOOK_SECRET = 'whsec-init-watch-8b2d4f6a1c';

/** The application: writes its pid, appends one line per SIGHUP, runs until killed. */
const APP = `
const fs = require('node:fs');
fs.writeFileSync(process.argv[1], String(process.pid));
process.on('SIGHUP', () => fs.appendFileSync(process.argv[2], 'HUP\\n'));
setInterval(() => {}, 1000);
`;

/** The command of exec --watch: logs its start with GREETING, its SIGTERM; exits 3 on SIGUSR1. */
const CHILD = `
const fs = require('node:fs');
const log = process.argv[1];
fs.appendFileSync(log, 'start ' + process.pid + ' ' + process.env.GREETING + '\\n');
process.on('SIGTERM', () => { fs.appendFileSync(log, 'term ' + process.pid + '\\n'); process.exit(0); });
process.on('SIGHUP', () => fs.appendFileSync(log, 'hup ' + process.pid + ' ' + process.env.GREETING + '\\n'));
process.on('SIGUSR1', () => process.exit(3));
setInterval(() => {}, 1000);
`;

let root: string;
let remote: GitRemote;
let work: GitTestRepo;
let pki: TestPki;
let orders: ClientCert;
let service: TestService;
let proxy: TcpProxy;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cfg-init-watch-'));
  remote = await startGitRemote(root, {
    'orders/application.yml': 'greeting: hello\nserver:\n  port: 8080\n',
    'orders/files/logback.xml': '<configuration/>\n',
    'orders/templates/app.conf': 'port={{ server.port }}\ngreeting={{ greeting }}\n',
    'billing/application.yml': 'y: 1\n',
  });
  work = remote.work;
  pki = await makeCerts('init-watch');
  orders = await pki.client('orders');
  service = await startTestService({
    pki,
    repository: { url: remote.url, branch: 'main', pollIntervalMs: 0, webhookSecretFile: writeWebhookSecret(root, HOOK_SECRET) },
  });
  proxy = await startTcpProxy({ targetPort: Number(new URL(service.apiUrl).port) });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await proxy?.close();
  await service?.close();
  await remote?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Pushes `files` as one commit and sends the push webhook; resolves once the service serves it. */
function pushAndNotify(files: Record<string, string | null>, message: string): Promise<{ commit: string; hookAt: number }> {
  return push({ remote, apiUrl: service.apiUrl, ca: pki.ca.certPem, secret: HOOK_SECRET, client: orders }, files, message);
}

/** Resolves once `check` holds, polling every 50 ms; fails after `ms` naming `what`. */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function health(port: number): Promise<{ status: number; body: { ready: boolean; reason?: string; commit?: string } }> {
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string; commit?: string } };
}

const count = (text: string, re: RegExp): number => (text.match(new RegExp(re.source, 'g')) ?? []).length;
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

function startApp(dir: string): { child: ChildProcess; pidFile: string; hupFile: string } {
  const pidFile = join(dir, 'app.pid');
  const hupFile = join(dir, 'hups');
  const child = spawn(process.execPath, ['-e', APP, pidFile, hupFile], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  return { child, pidFile, hupFile };
}

function watchArgs(out: string, extra: string[]): string[] {
  return [
    'watch', '--server', proxy.rewrite(service.apiUrl), '--app', 'orders', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile,
    '--output-dir', out, '--format', 'properties,json', '--files', '--templates', '--wait', '20s', '--timeout', '3000', '--deadline', '5000',
    '--termination-log', '', ...extra,
  ];
}

function sidecar(args: string[]): InitProcess {
  const p = startInit(args);
  cleanups.push(() => p.child.kill('SIGKILL'));
  return p;
}

describe('config-init watch', () => {
  let dir: string;
  let out: string;
  let app: ReturnType<typeof startApp>;
  let watcher: InitProcess;
  let port: number;
  let swaps: string[];
  let fsw: FSWatcher;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cfg-watch-app-'));
    out = join(dir, 'config');
    app = startApp(dir);
    await until(() => existsSync(app.pidFile), 'the application to write its pid');
    port = await freePort();
    watcher = sidecar(watchArgs(out, ['--on-change-signal', 'HUP', '--pid-file', app.pidFile, '--health-port', String(port)]));
    await watcher.waitForStderr(/published 5 file\(s\) at commit/);
    await until(async () => (await health(port).catch(() => ({ status: 0 }))).status === 200, 'the sidecar to be ready');
    swaps = [];
    fsw = watch(out, (event, name) => {
      if (name === '..data') swaps.push(event);
    });
    cleanups.push(() => fsw.close());
  });

  it('publishes every format, the files and the templates at start, and answers ready', async () => {
    expect(readFileSync(join(out, 'application.properties'), 'utf8')).toBe('greeting=hello\nserver.port=8080\n');
    expect(readFileSync(join(out, 'templates', 'app.conf'), 'utf8')).toBe('port=8080\ngreeting=hello\n');
    expect(readFileSync(join(out, 'files', 'logback.xml'), 'utf8')).toBe('<configuration/>\n');
    const h = await health(port);
    expect(h.body).toMatchObject({ ready: true, commit: work.commit });
    expect(lines(app.hupFile)).toEqual([]);
  });

  it('a commit that does not touch the application wakes nobody: no swap, no signal, no new set', async () => {
    // The sidecar holds three long-polls: the configuration, the file list, the template list.
    await until(() => service.api.longPoll.waiters === 3, "the sidecar's three long-polls");
    const waitersBefore = service.api.longPoll.waiters;
    await pushAndNotify({ 'billing/application.yml': 'y: 2\n' }, 'billing only');
    await new Promise((r) => setTimeout(r, 1500));
    expect(service.api.longPoll.waiters).toBe(waitersBefore);
    // No held request was answered: the service audits every answer, a woken one as wait_changed.
    const { events } = await (service.api as unknown as { auditStore: { query(q: { limit: number }): Promise<{ events: Array<{ reason?: string; app?: string }> }> } }).auditStore.query({ limit: 500 });
    expect(events.filter((e) => e.app === 'orders' && e.reason?.startsWith('wait_'))).toEqual([]);
    expect(count(watcher.stderr, /published \d+ file\(s\)/)).toBe(1);
    expect(swaps).toEqual([]);
    expect(lines(app.hupFile)).toEqual([]);
  });

  it('a push and its webhook republish once: one ..data swap, then exactly one SIGHUP to the application', async () => {
    const { commit, hookAt } = await pushAndNotify({ 'orders/application.yml': 'greeting: bonjour\nserver:\n  port: 8080\n' }, 'greeting');
    await watcher.waitForStderr(new RegExp(`published 5 file\\(s\\) at commit ${commit}`));
    const publishedAt = Date.now();
    await until(() => lines(app.hupFile).length >= 1, 'the SIGHUP');
    // eslint-disable-next-line no-console
    console.log(`config-init watch: webhook to new set on the volume in ~${publishedAt - hookAt} ms (within the test's polling granularity of 50 ms)`);
    expect(readFileSync(join(out, 'application.properties'), 'utf8')).toBe('greeting=bonjour\nserver.port=8080\n');
    expect(readFileSync(join(out, 'templates', 'app.conf'), 'utf8')).toBe('port=8080\ngreeting=bonjour\n');
    // The notification follows the swap: the log says so in that order.
    expect(watcher.stderr.indexOf(`published 5 file(s) at commit ${commit}`)).toBeLessThan(watcher.stderr.indexOf('notified: signal SIGHUP'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(swaps).toEqual(['rename']);
    expect(lines(app.hupFile)).toEqual(['HUP']);
    expect(count(watcher.stderr, /notified: signal SIGHUP to pid \d+/)).toBe(1);
    expect((await health(port)).body).toMatchObject({ ready: true, commit });
  });

  it('with the service unreachable it keeps the last set and says why; when it returns, a change made meanwhile is published', async () => {
    const before = readFileSync(join(out, 'application.properties'), 'utf8');
    await proxy.setMode('reset');
    await until(async () => (await health(port)).status === 503, 'readiness to turn 503');
    const h = await health(port);
    expect(h.body.ready).toBe(false);
    expect(h.body.reason).toMatch(/^cannot ask config-service for changes/);
    expect(readFileSync(join(out, 'application.properties'), 'utf8')).toBe(before);
    const { commit } = await pushAndNotify({ 'orders/application.yml': 'greeting: hola\nserver:\n  port: 8080\n' }, 'while down');
    await new Promise((r) => setTimeout(r, 500));
    expect(readFileSync(join(out, 'application.properties'), 'utf8')).toBe(before);
    await proxy.setMode('forward');
    await watcher.waitForStderr(new RegExp(`published 5 file\\(s\\) at commit ${commit}`), 120_000);
    expect(readFileSync(join(out, 'application.properties'), 'utf8')).toBe('greeting=hola\nserver.port=8080\n');
    await until(() => lines(app.hupFile).length >= 2, 'the second SIGHUP');
    await until(async () => (await health(port)).status === 200, 'readiness to recover');
    expect(lines(app.hupFile)).toEqual(['HUP', 'HUP']);
  });

  it('a killed sidecar restarted on the same volume resumes from the set: nothing republished, then changes flow again', async () => {
    watcher.child.kill('SIGKILL');
    await watcher.done;
    const swapsBefore = swaps.length;
    const again = sidecar(watchArgs(out, ['--on-change-signal', 'HUP', '--pid-file', app.pidFile]));
    await again.waitForStderr(/resuming from the set on the volume at commit/);
    await again.waitForStderr(/the published set is current/);
    await new Promise((r) => setTimeout(r, 500));
    expect(swaps.length).toBe(swapsBefore);
    expect(count(again.stderr, /published \d+ file\(s\)/)).toBe(0);
    expect(lines(app.hupFile)).toEqual(['HUP', 'HUP']);
    const { commit } = await pushAndNotify({ 'orders/files/logback.xml': '<configuration debug="true"/>\n' }, 'logback');
    await again.waitForStderr(new RegExp(`published 5 file\\(s\\) at commit ${commit}`));
    expect(readFileSync(join(out, 'files', 'logback.xml'), 'utf8')).toBe('<configuration debug="true"/>\n');
    await until(() => lines(app.hupFile).length >= 3, 'the third SIGHUP');
    again.child.kill('SIGTERM');
    expect((await again.done).code).toBe(0);
  });
});

describe('config-init exec --watch', () => {
  function execArgs(extra: string[], log: string): string[] {
    return [
      'exec', '--watch', '--server', proxy.rewrite(service.apiUrl), '--app', 'orders', '--cert', orders.certFile, '--key', orders.keyFile, '--ca', pki.caFile,
      '--wait', '20s', '--termination-log', '', '--deadline', '10000', ...extra, '--', process.execPath, '-e', CHILD, log,
    ];
  }

  it('restarts the command with the new environment on a change (SIGTERM first), and exits with its code when it ends on its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-exec-watch-'));
    const log = join(dir, 'child.log');
    const p = sidecar(execArgs(['--grace-period', '10s'], log));
    await until(() => lines(log).length === 1, 'the first start');
    const [first] = lines(log);
    expect(first).toMatch(/^start \d+ hola$/);
    const pid1 = first!.split(' ')[1];
    await pushAndNotify({ 'orders/application.yml': 'greeting: ciao\nserver:\n  port: 8080\n' }, 'ciao');
    await until(() => lines(log).length >= 3, 'the restart');
    const after = lines(log);
    expect(after[1]).toBe(`term ${pid1}`);
    expect(after[2]).toMatch(/^start \d+ ciao$/);
    const pid2 = Number(after[2]!.split(' ')[1]);
    expect(String(pid2)).not.toBe(pid1);
    // The command ends on its own (SIGUSR1, forwarded to it, makes it exit 3): exec's exit code rule.
    p.child.kill('SIGUSR1');
    const res = await p.done;
    expect(res.code).toBe(3);
    expect(lines(log)).toHaveLength(3);
  });

  it('--on-change-signal HUP signals the command instead of restarting it; SIGTERM ends both with the command\'s code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-exec-watch-'));
    const log = join(dir, 'child.log');
    const p = sidecar(execArgs(['--on-change-signal', 'HUP'], log));
    await until(() => lines(log).length === 1, 'the start');
    const pid = lines(log)[0]!.split(' ')[1];
    await pushAndNotify({ 'orders/application.yml': 'greeting: salut\nserver:\n  port: 8080\n' }, 'salut');
    await until(() => lines(log).length >= 2, 'the SIGHUP');
    // The process keeps its environment (no restart): it was signalled.
    expect(lines(log)).toEqual([`start ${pid} ciao`, `hup ${pid} ciao`]);
    p.child.kill('SIGTERM');
    const res = await p.done;
    expect(res.code).toBe(0);
    expect(lines(log)).toEqual([`start ${pid} ciao`, `hup ${pid} ciao`, `term ${pid}`]);
  });
});
