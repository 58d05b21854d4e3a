// ApacheBench (`ab`, Debian package apache2-utils): runs and output parsing. `ab -E`
// presents a client certificate (PEM file holding the certificate, then the key).
import { execFileSync } from 'node:child_process';
import { runPinned } from './proc.mjs';

/** Installs apache2-utils with apt when `ab` is missing; says so. */
export function ensureAb(log) {
  try {
    execFileSync('ab', ['-V'], { stdio: 'ignore' });
    return;
  } catch {
    // not installed
  }
  log('`ab` (ApacheBench) is missing: installing the Debian package apache2-utils with apt-get');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args) => execFileSync(sudo.length ? 'sudo' : args[0], sudo.length ? args : args.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', 'apache2-utils']);
}

/** The version line of `ab -V`. */
export function abVersion() {
  return execFileSync('ab', ['-V']).toString().split('\n')[0].trim();
}

/**
 * Runs ab pinned to `cpus` (`seconds`: stop after that long, else after `requests`).
 * @returns {Promise<{ rps: number, p50: number, p99: number, complete: number, failed: number, non2xx: number }>}
 */
export async function runAb(cpus, { url, requests, concurrency, keepAlive, pem, seconds }) {
  // -t implies -n 50000; the -n after it sets the real cap.
  const args = ['-q', ...(seconds ? ['-t', String(seconds)] : []), '-n', String(requests), '-c', String(concurrency), '-E', pem, '-l', ...(keepAlive ? ['-k'] : []), url];
  const r = await runPinned(cpus, 'ab', args);
  if (r.code !== 0) throw new Error(`ab ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(0, 500)}`);
  const num = (re) => {
    const m = re.exec(r.stdout);
    return m ? Number(m[1]) : NaN;
  };
  const out = {
    rps: num(/Requests per second:\s+([\d.]+)/),
    p50: num(/\n\s+50%\s+(\d+)/),
    p99: num(/\n\s+99%\s+(\d+)/),
    complete: num(/Complete requests:\s+(\d+)/),
    failed: num(/Failed requests:\s+(\d+)/),
    non2xx: Number.isNaN(num(/Non-2xx responses:\s+(\d+)/)) ? 0 : num(/Non-2xx responses:\s+(\d+)/),
  };
  if (out.failed > 0 || out.non2xx > 0) throw new Error(`ab: ${out.failed} failed, ${out.non2xx} non-2xx of ${out.complete} (${url})`);
  return out;
}
