/**
 * `config-service audit witness` (issue 13): polls `GET /v1/audit/checkpoints` of a
 * running service and appends each new checkpoint whose signature verifies with the
 * public key(s) it was given (never a key the service sends) to a file kept elsewhere,
 * for `audit verify --checkpoints`. It resumes from the file (the newest `seq` in it), so
 * it can be stopped and started again, and it keeps polling across restarts of the
 * service (a failed poll is reported and retried at the next interval).
 *
 * A checkpoint that does not verify, or names another store than the file's, is not
 * written: it is reported on the error output, and the run ends with exit code 1
 * (`--once`) — the service, or something between, presented a forged checkpoint.
 */
import { open, readFile } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { checkCheckpointSignature, checkpointJson, parseCheckpoint, parseCheckpointEvidence, type Checkpoint, type CheckpointPublicKey } from './checkpoint.js';
import { CFG_ERR_INVALID_REQUEST } from '../errors.js';

/** Options of {@link runWitness}. */
export interface WitnessOptions {
  /** Base URL of the service's API listener (`https://config.example.com:8443`). */
  url: string;
  /** The file checkpoints are appended to (NDJSON, one checkpoint per line); created when missing. */
  out: string;
  /** The public keys checkpoints must be signed with. */
  keys: readonly CheckpointPublicKey[];
  /** TLS: CA bundle, client certificate and key (PEM), for mTLS. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** A bearer token with the `audit:read` scope (instead of a client certificate). */
  token?: string;
  /** Time between polls, ms. */
  intervalMs: number;
  /** Poll once and return. */
  once: boolean;
  /** Stops the loop (SIGTERM); the current poll finishes first. */
  signal?: AbortSignal;
  /** One line per event worth reporting (appended, refused, poll failed). */
  report: (line: string) => void;
}

/** What a run did. */
export interface WitnessResult {
  /** Checkpoints appended to the file. */
  appended: number;
  /** Checkpoints refused (bad signature, other store). */
  refused: number;
  /** Polls that failed (service unreachable, HTTP error). */
  failedPolls: number;
}

/** One poll's answer: the page of checkpoints after `after`. */
async function fetchCheckpoints(opts: WitnessOptions, after: number): Promise<unknown[]> {
  const url = new URL(`/v1/audit/checkpoints?after=${after}&limit=1000`, opts.url);
  const reqOpts: RequestOptions = {
    method: 'GET',
    headers: { accept: 'application/json', ...(opts.token !== undefined && { authorization: `Bearer ${opts.token}` }) },
    ...(opts.ca !== undefined && { ca: opts.ca }),
    ...(opts.cert !== undefined && { cert: opts.cert }),
    ...(opts.key !== undefined && { key: opts.key }),
    timeout: 30_000,
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, reqOpts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          let code = '';
          try {
            code = String((JSON.parse(text) as { code?: unknown }).code ?? '');
          } catch {
            // not problem+json
          }
          reject(new Error(`HTTP ${res.statusCode ?? '?'}${code ? ` ${code}` : ''} from ${url.origin}${url.pathname}`));
          return;
        }
        try {
          const body = JSON.parse(text) as { checkpoints?: unknown };
          if (!Array.isArray(body.checkpoints)) throw new Error('no checkpoints array');
          resolve(body.checkpoints);
        } catch (err) {
          reject(new Error(`unexpected answer from ${url.origin}${url.pathname}: ${(err as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Appends lines to the file and flushes them to disk. */
async function appendDurably(file: string, lines: readonly string[]): Promise<void> {
  const fh = await open(file, 'a', 0o644);
  try {
    await fh.appendFile(lines.map((l) => `${l}\n`).join(''), 'utf8');
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}

/**
 * Runs the witness until `signal` aborts (or once).
 * @throws CFG_ERR_INVALID_REQUEST when `out` exists but holds a malformed checkpoint line,
 *   or no public key is given.
 */
export async function runWitness(opts: WitnessOptions): Promise<WitnessResult> {
  if (opts.keys.length === 0) throw new CFG_ERR_INVALID_REQUEST('audit witness needs --public-key: the checkpoints are checked with it');
  let text = '';
  try {
    text = await readFile(opts.out, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CFG_ERR_INVALID_REQUEST(`--out ${opts.out}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const kept = parseCheckpointEvidence(text, opts.out).checkpoints.map((e) => e.checkpoint);
  let after = kept.reduce((m, cp) => Math.max(m, cp.seq), 0);
  let storeId = kept[0]?.storeId;
  const result: WitnessResult = { appended: 0, refused: 0, failedPolls: 0 };
  if (kept.length > 0) opts.report(`resuming after seq ${after} (${kept.length} checkpoint(s) in ${opts.out})`);

  while (!opts.signal?.aborted) {
    let page: unknown[];
    try {
      page = await fetchCheckpoints(opts, after);
    } catch (err) {
      result.failedPolls++;
      opts.report(`poll failed: ${(err as Error).message}; retrying in ${opts.intervalMs} ms`);
      if (opts.once) break;
      await sleep(opts.intervalMs, opts.signal);
      continue;
    }
    const accepted: Checkpoint[] = [];
    for (const raw of page) {
      const cp = parseCheckpoint(raw);
      if (typeof cp === 'string') {
        result.refused++;
        opts.report(`REFUSED a malformed checkpoint from the service: ${cp}`);
        continue;
      }
      if (storeId !== undefined && cp.storeId !== storeId) {
        result.refused++;
        opts.report(`REFUSED checkpoint seq ${cp.seq}: it is for store ${cp.storeId}, ${opts.out} holds store ${storeId}`);
        continue;
      }
      if (checkCheckpointSignature(cp, opts.keys) !== 'valid') {
        result.refused++;
        opts.report(`REFUSED checkpoint seq ${cp.seq} (key ${cp.keyId}): its signature does not verify with the given public key(s)`);
        continue;
      }
      storeId ??= cp.storeId;
      accepted.push(cp);
    }
    if (accepted.length > 0) {
      await appendDurably(opts.out, accepted.map(checkpointJson));
      result.appended += accepted.length;
      for (const cp of accepted) opts.report(`appended ${cp.kind} checkpoint seq ${cp.seq} (${cp.time}, writer ${cp.writerId})`);
    }
    const newest = page.reduce<number>((m, raw) => {
      const seq = (raw as { seq?: unknown }).seq;
      return typeof seq === 'number' && seq > m ? seq : m;
    }, after);
    after = newest;
    // A full page: more are waiting, poll again at once.
    if (page.length >= 1000) continue;
    if (opts.once) break;
    await sleep(opts.intervalMs, opts.signal);
  }
  return result;
}
