/**
 * Notifications of `config-init watch` (issue 12): a signal by pid file or by process name
 * (a /proc tree laid out by the test, so the parent rule can be checked), a command run with
 * CONFIG_INIT_COMMIT, and a POST to a real local HTTP server. Failures are reported, never thrown.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findProcesses, notifyChange, readPidFile } from '../src/notify.js';
import { parseCommandLine } from '../src/args.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'notify-'));
  dirs.push(d);
  return d;
}

/** A /proc with processes: pid → [comm, ppid, argv0]. */
function procTree(procs: Record<number, [string, number, string]>): string {
  const root = tmp();
  for (const [pid, [comm, ppid, argv0]] of Object.entries(procs)) {
    mkdirSync(path.join(root, pid));
    writeFileSync(path.join(root, pid, 'comm'), `${comm}\n`);
    writeFileSync(path.join(root, pid, 'cmdline'), `${argv0}\0-g\0daemon off;\0`);
    writeFileSync(path.join(root, pid, 'stat'), `${pid} (${comm}) S ${ppid} 1 1 0 -1\n`);
  }
  mkdirSync(path.join(root, 'self'));
  return root;
}

describe('finding the process to signal', () => {
  it('by name: nginx master only (its workers have a parent of the same name), never config-init itself', async () => {
    const procRoot = procTree({ 1: ['pause', 0, '/pause'], 7: ['nginx', 1, 'nginx'], 8: ['nginx', 7, 'nginx'], 9: ['nginx', 7, 'nginx'], 12: ['node', 1, '/usr/bin/node'], 20: ['java', 1, '/opt/java/bin/java'] });
    expect(await findProcesses('nginx', { procRoot, self: 12 })).toEqual([7]);
    expect(await findProcesses('java', { procRoot, self: 12 })).toEqual([20]);
    expect(await findProcesses('node', { procRoot, self: 12 })).toEqual([]);
  });

  it('signals what it found, and reports a missing process or pid file without throwing', async () => {
    const procRoot = procTree({ 7: ['nginx', 1, 'nginx'] });
    const sent: Array<[number, string]> = [];
    const kill = (pid: number, sig: NodeJS.Signals) => void sent.push([pid, sig]);
    const byName = await notifyChange({ signal: 'SIGHUP', processName: 'nginx', timeoutMs: 1000 }, 'c0ffee', { procRoot, kill });
    expect(sent).toEqual([[7, 'SIGHUP']]);
    expect(byName).toEqual({ done: ['signal SIGHUP to pid 7'], failed: [] });
    const none = await notifyChange({ signal: 'SIGHUP', processName: 'haproxy', timeoutMs: 1000 }, 'c0ffee', { procRoot, kill });
    expect(none.failed).toEqual(["signal SIGHUP: no process named 'haproxy' (is shareProcessNamespace: true set on the pod?)"]);
    const pidFile = path.join(tmp(), 'app.pid');
    const missing = await notifyChange({ signal: 'SIGUSR1', pidFile, timeoutMs: 1000 }, 'c0ffee', { kill });
    expect(missing.failed).toEqual([`signal SIGUSR1: cannot read --pid-file '${pidFile}': ENOENT`]);
    writeFileSync(pidFile, 'not a pid\n');
    await expect(readPidFile(pidFile)).rejects.toThrow(`--pid-file '${pidFile}' holds no process id`);
    writeFileSync(pidFile, '4242\n');
    expect(await readPidFile(pidFile)).toBe(4242);
  });
});

describe('a command and a local POST', () => {
  it('runs the command with CONFIG_INIT_COMMIT and reports its exit code', async () => {
    const out = path.join(tmp(), 'ran');
    const ok = await notifyChange({ exec: [process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(out)}, process.env.CONFIG_INIT_COMMIT)`], timeoutMs: 10_000 }, 'c0ffee');
    expect(ok.done).toEqual([`command '${process.execPath}' exited 0`]);
    expect(readFileSync(out, 'utf8')).toBe('c0ffee');
    const bad = await notifyChange({ exec: [process.execPath, '-e', 'process.exit(3)'], timeoutMs: 10_000 }, 'c0ffee');
    expect(bad.failed).toEqual([`command '${process.execPath}' exited 3`]);
    const missing = await notifyChange({ exec: ['/nonexistent/reload'], timeoutMs: 10_000 }, 'c0ffee');
    expect(missing.failed).toEqual(["command '/nonexistent/reload' cannot be started: ENOENT"]);
  });

  it('POSTs with Config-Commit to the local URL; a non-2xx answer is a failure', async () => {
    const seen: Array<{ method?: string; url?: string; commit?: string | string[] }> = [];
    let status = 200;
    const server = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, commit: req.headers['config-commit'] });
      res.writeHead(status).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/actuator/refresh`);
    try {
      expect((await notifyChange({ http: url, timeoutMs: 5000 }, 'c0ffee')).done).toEqual([`POST ${url.origin}/actuator/refresh: HTTP 200`]);
      status = 503;
      expect((await notifyChange({ http: url, timeoutMs: 5000 }, 'c0ffee')).failed).toEqual([`POST ${url.origin}/actuator/refresh: HTTP 503`]);
      expect(seen).toEqual([{ method: 'POST', url: '/actuator/refresh', commit: 'c0ffee' }, { method: 'POST', url: '/actuator/refresh', commit: 'c0ffee' }]);
    } finally {
      server.close();
    }
  });
});

describe('watch flags', () => {
  const base = ['--server', 'https://cs.example', '--app', 'orders', '--cert', 'c', '--key', 'k'];
  const fails = (args: string[]) => () => parseCommandLine(args, {});

  it('parses watch and exec --watch', () => {
    const w = parseCommandLine(['watch', ...base, '--on-change-signal', 'hup', '--process-name', 'nginx', '--health-port', '8787', '--wait', '30s', '--templates'], {});
    expect(w.kind).toBe('watch');
    if (w.kind === 'watch') {
      expect(w.watch).toMatchObject({ signal: 'SIGHUP', processName: 'nginx', healthPort: 8787, waitMs: 30_000, restart: false });
      expect(w.options.templates).toBe(true);
    }
    const e = parseCommandLine(['exec', '--watch', ...base, '--grace-period', '5s', '--', 'java'], {});
    expect(e.kind === 'exec' && e.watch).toMatchObject({ restart: true, gracePeriodMs: 5000 });
    const s = parseCommandLine(['exec', ...base, '--', 'java'], { CONFIG_INIT_WATCH: 'true', CONFIG_INIT_ON_CHANGE_SIGNAL: 'USR2' });
    expect(s.kind === 'exec' && s.watch).toMatchObject({ restart: false, signal: 'SIGUSR2' });
  });

  it('refuses what does not fit, naming the flag and its variable', () => {
    expect(fails(['watch', ...base, '--on-change-signal', 'HUP'])).toThrow('--on-change-signal (env CONFIG_INIT_ON_CHANGE_SIGNAL) needs --pid-file (env CONFIG_INIT_PID_FILE) or --process-name (env CONFIG_INIT_PROCESS_NAME)');
    expect(fails(['watch', ...base, '--pid-file', '/run/a.pid'])).toThrow('--pid-file (env CONFIG_INIT_PID_FILE) needs --on-change-signal');
    expect(fails(['watch', ...base, '--on-change-signal', 'KILL', '--pid-file', 'p'])).toThrow("'KILL' is not a signal a process can handle");
    expect(fails(['watch', ...base, '--on-change-http', 'http://billing.svc/refresh'])).toThrow('the host must be localhost, 127.0.0.1 or [::1]');
    expect(fails(['watch', ...base, '--on-change-http', 'https://localhost/refresh'])).toThrow('must be an http:// URL');
    expect(fails(['watch', ...base, '--health-port', '0'])).toThrow('expected a port number 1-65535');
    expect(fails(['watch', ...base, '--dry-run'])).toThrow("not available with 'watch'");
    expect(fails(['watch', ...base, '--fallback-dir', '/fb'])).toThrow("not available with 'watch'");
    expect(fails(['watch', ...base, '--grace-period', '5s'])).toThrow("only with 'exec --watch'");
    expect(fails(['fetch', ...base, '--wait', '30s'])).toThrow("--wait (env CONFIG_INIT_WAIT) needs the 'watch' command");
    expect(fails(['fetch', ...base, '--watch'])).toThrow("is an option of 'exec'");
    expect(fails(['exec', ...base, '--on-change-signal', 'HUP', '--', 'x'])).toThrow('needs --watch');
    expect(fails(['exec', '--watch', ...base, '--on-change-http', 'http://localhost/x', '--', 'x'])).toThrow("not available with 'exec --watch'");
  });
});
