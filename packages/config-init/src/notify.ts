/**
 * Telling the application that a new set was published (`config-init watch`, SPEC §7):
 * a signal to the process whose pid is in a file, or to the process found by name in a
 * shared process namespace (Kubernetes `shareProcessNamespace: true`); a command; a POST
 * to a local URL (Spring Boot's `/actuator/refresh`). Each runs once per publication, in
 * that order; a failure is reported (and logged by the caller), never retried: the set is
 * published either way and the next change notifies again.
 *
 * Only `node:` built-ins (config-init is bundled without dependencies).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';

/** How to notify (from `WatchOptions`). */
export interface NotifyTargets {
  /** Signal to send (`SIGHUP`...). */
  readonly signal?: NodeJS.Signals | undefined;
  /** File holding the pid to signal. */
  readonly pidFile?: string | undefined;
  /** Name of the process to signal. */
  readonly processName?: string | undefined;
  /** Command to run (no shell). */
  readonly exec?: readonly string[] | undefined;
  /** Local URL to POST to. */
  readonly http?: URL | undefined;
  /** Longest a command or POST may take (ms). */
  readonly timeoutMs: number;
}

/** What a notification did, for the log: one line each, never a configuration value. */
export interface NotifyReport {
  /** Done: `signal SIGHUP to pid 42`, `command 'nginx' exited 0`, `POST http://localhost:8080/actuator/refresh: 200`. */
  readonly done: string[];
  /** Failed, with the cause. */
  readonly failed: string[];
}

/** Where processes are listed (tests may point elsewhere). */
export interface ProcessTable {
  /** Root of the process file system; default `/proc`. */
  readonly procRoot?: string;
  /** This process's pid (never signalled); default `process.pid`. */
  readonly self?: number;
  /** Sends a signal; default `process.kill`. */
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
}

function codeOf(err: unknown): string {
  return err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : err instanceof Error ? err.message : String(err);
}

/** The pid written in `file` (first line, decimal). @throws naming the file and what was wrong */
export async function readPidFile(file: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read --pid-file '${file}': ${codeOf(err)}`);
  }
  const m = /^\s*(\d{1,10})\s*$/m.exec(text);
  const pid = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`--pid-file '${file}' holds no process id`);
  return pid;
}

/**
 * The pids of the processes named `name`: `/proc/<pid>/comm` (the kernel's 15-character
 * name) or the base name of `argv[0]` equal to it, this process excluded, and among those
 * only the ones whose parent is not itself one of them (nginx's master, not its workers).
 */
export async function findProcesses(name: string, table: ProcessTable = {}): Promise<number[]> {
  const root = table.procRoot ?? '/proc';
  const self = table.self ?? process.pid;
  const found = new Map<number, number>();
  for (const entry of await readdir(root).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === self) continue;
    const comm = (await readFile(`${root}/${entry}/comm`, 'utf8').catch(() => '')).trim();
    const argv0 = (await readFile(`${root}/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0')[0] ?? '';
    if (comm !== name && argv0.split('/').pop() !== name) continue;
    const stat = await readFile(`${root}/${entry}/stat`, 'utf8').catch(() => '');
    // `pid (comm) state ppid ...`: the name may hold spaces and parentheses; read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    found.set(pid, Number.isFinite(ppid) ? ppid : 0);
  }
  return [...found].filter(([, ppid]) => !found.has(ppid)).map(([pid]) => pid).sort((a, b) => a - b);
}

/** Runs `command` (no shell) with `env` added; resolves with its exit code, or rejects after `timeoutMs` (the command is killed). */
function runCommand(command: readonly string[], env: Readonly<Record<string, string>>, timeoutMs: number): Promise<number> {
  const [file = '', ...args] = command;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env }, shell: false });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`did not finish within --on-change-timeout ${timeoutMs} ms; killed`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot be started: ${codeOf(err)}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? 128 + (signal ? 1 : 0));
    });
  });
}

/** POSTs an empty body to `url`; resolves with the status, rejects on a transport error or after `timeoutMs`. */
function post(url: URL, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': '0', 'user-agent': 'config-init' }, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within --on-change-timeout ${timeoutMs} ms`)));
    req.once('error', (err) => reject(new Error(codeOf(err))));
    req.end();
  });
}

/**
 * Notifies the application of the set published at `commit`.
 * @returns what was done and what failed (never throws)
 */
export async function notifyChange(targets: NotifyTargets, commit: string, table: ProcessTable = {}): Promise<NotifyReport> {
  const done: string[] = [];
  const failed: string[] = [];
  const kill = table.kill ?? ((pid: number, signal: NodeJS.Signals) => void process.kill(pid, signal));
  if (targets.signal !== undefined && (targets.pidFile !== undefined || targets.processName !== undefined)) {
    try {
      const pids = targets.pidFile !== undefined ? [await readPidFile(targets.pidFile)] : await findProcesses(targets.processName as string, table);
      if (pids.length === 0) throw new Error(`no process named '${targets.processName ?? ''}' (is shareProcessNamespace: true set on the pod?)`);
      for (const pid of pids) {
        try {
          kill(pid, targets.signal);
          done.push(`signal ${targets.signal} to pid ${pid}`);
        } catch (err) {
          failed.push(`signal ${targets.signal} to pid ${pid}: ${codeOf(err)}`);
        }
      }
    } catch (err) {
      failed.push(`signal ${targets.signal}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (targets.exec !== undefined) {
    const name = targets.exec[0] ?? '';
    try {
      const code = await runCommand(targets.exec, { CONFIG_INIT_COMMIT: commit }, targets.timeoutMs);
      (code === 0 ? done : failed).push(`command '${name}' exited ${code}`);
    } catch (err) {
      failed.push(`command '${name}' ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (targets.http !== undefined) {
    const where = `POST ${targets.http.origin}${targets.http.pathname}`;
    try {
      const status = await post(targets.http, { 'config-commit': commit }, targets.timeoutMs);
      (status >= 200 && status < 300 ? done : failed).push(`${where}: HTTP ${status}`);
    } catch (err) {
      failed.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { done, failed };
}
