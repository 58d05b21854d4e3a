// Process measurements from /proc: CPU time (utime + stime, every thread) and RSS of a
// process and its descendants (the workers of `server.workers`), and CPU pinning.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** `pid` and every live descendant. */
export function processTree(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** CPU seconds (user + system) used so far by `pid` and its descendants. */
export function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const s = stat(p);
    if (s) ticks += s.utime + s.stime;
  }
  return ticks / TICKS;
}

/** Resident set size of one process, MiB. */
export function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** RSS of `pid` and of each descendant: `{ pid, rss }[]`, `pid` first. */
export function treeRss(pid) {
  return processTree(pid).map((p) => ({ pid: p, rss: rssMiB(p) }));
}

/**
 * Which CPUs serve and which load: the servers get `server` (one CPU, or `serverWide` for
 * two workers), the load generators get `load`; on 2 CPUs, two server workers share the
 * load generator's CPU (said in the results).
 */
export function cpuPlan() {
  let allowed;
  try {
    allowed = execFileSync('taskset', ['-pc', String(process.pid)]).toString().split(':').pop().trim();
  } catch {
    allowed = `0-${os.availableParallelism() - 1}`;
  }
  const cpus = [];
  for (const part of allowed.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  if (cpus.length < 2) throw new Error(`the benchmark needs 2 CPUs (one for the server, one for the load generator); this process may use ${allowed}`);
  const server = String(cpus[0]);
  const load = String(cpus[cpus.length - 1]);
  const serverWide = cpus.length >= 4 ? `${cpus[0]},${cpus[1]}` : `${cpus[0]},${cpus[1]}`;
  return { cpus, server, load, serverWide, sharedForTwoWorkers: cpus.length < 3 };
}

/** Pins this process (and the children it spawns afterwards) to `cpus`. */
export function pinSelf(cpus) {
  execFileSync('taskset', ['-pc', cpus, String(process.pid)], { stdio: 'ignore' });
}

/** Spawns `cmd args` pinned to `cpus` (taskset execs it: the pid is the command's). */
export function spawnPinned(cpus, cmd, args, opts = {}) {
  return spawn('taskset', ['-c', cpus, cmd, ...args], opts);
}

/** Runs `cmd args` pinned to `cpus`; resolves `{ code, stdout, stderr, wallMs }`. */
export function runPinned(cpus, cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawnPinned(cpus, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, wallMs: Number(process.hrtime.bigint() - started) / 1e6 }));
  });
}
