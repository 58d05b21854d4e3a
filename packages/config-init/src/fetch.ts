/**
 * Fetching one application's configuration from config-service over mutual TLS: the
 * order of the requests (environment map, formats, raw files), commit pinning, and the
 * glue between the transport (`transport.ts`), the retry policy (`retry.ts`) and the
 * answer checks (`response.ts`).
 *
 * One {@link TlsClient} per run: one keep-alive connection while attempts succeed, the TLS
 * files re-read before every attempt, a new connection after any failure. One retry
 * budget per run: one deadline for all requests.
 */
import type { EnvNaming, Format, Options } from './args.js';
import { FetchError } from './errors.js';
import {
  ACCEPT,
  checkDocument,
  checkEnvMap,
  checkFile,
  checkFileList,
  clean,
  header,
  problemOf,
  type FetchedDocument,
  type FetchedEnv,
  type FetchedFile,
} from './response.js';
import {
  classifyTransportError,
  isRetryableStatus,
  parseRetryAfter,
  retryBudget,
  retryUntilDeadline,
  Retryable,
  statusErrorCode,
  type RetryBudget,
  type RetryDeps,
} from './retry.js';
import { TlsClient, type RawResponse, type TlsFiles, type TlsMaterial, type TlsReloadInfo } from './transport.js';
import { configUrl, fileUrl, filesListUrl } from './urls.js';

export { MAX_BODY_BYTES, loadTlsMaterial, type TlsMaterial, type TlsFiles, type TlsReloadInfo } from './transport.js';
export { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffDelay, parseRetryAfter, classifyTransportError, type RetryInfo } from './retry.js';
export { filePathViolation, type FetchedDocument, type FetchedEnv, type FetchedFile, type FileEntry } from './response.js';
export { configUrl, filesListUrl, fileUrl } from './urls.js';

/** What to fetch. */
export interface FetchOptions {
  /** API base URL (https). */
  server: URL;
  /** Application name. */
  app: string;
  /** Profiles (may be empty). */
  profiles: readonly string[];
  /** Ref asked for, or `undefined` for the default branch. */
  ref: string | undefined;
  /** Formats; the first answer's commit pins the others. */
  formats: readonly Format[];
  /** Per-attempt timeout (ms). */
  timeoutMs: number;
  /** Overall deadline of the whole fetch (ms). */
  deadlineMs: number;
  /** Accept an empty configuration (`Config-Property-Count: 0`). */
  allowEmpty: boolean;
  /** TLS client material for the first attempt. */
  tls: TlsMaterial;
  /**
   * The files `tls` was read from: re-read before every later attempt, so a certificate
   * rotated while config-init retries is used. Without them `tls` is used throughout.
   */
  tlsFiles?: TlsFiles | undefined;
  /** Environment-name style for `env`, `dotenv` and the environment map (default `standard`). */
  envNaming?: EnvNaming;
  /** Fetch the environment map first (`format=env`, `Accept: application/json`), for `exec`. */
  envMap?: boolean;
  /** Fetch the raw files too (list, then each file), at the pinned commit. */
  files?: boolean;
  /** Fetch the rendered templates too (list, then each template), at the pinned commit. */
  templates?: boolean;
}

/** The result of {@link fetchConfig}: everything asked for, all at one commit. */
export interface FetchResult {
  /** The commit everything was read at. */
  commit: string;
  /** One document per requested format, in order. */
  documents: FetchedDocument[];
  /** The environment map (when `envMap` was asked for). */
  env?: Readonly<Record<string, string>> | undefined;
  /** SHA-256 hex of the environment map's body (when fetched). */
  envSha256?: string | undefined;
  /** The raw files in list order (when `files` was asked for). */
  files?: FetchedFile[] | undefined;
  /** The rendered templates in list order (when `templates` was asked for). */
  templates?: FetchedFile[] | undefined;
  /**
   * ETags of what a watcher long-polls: the environment map or the first format, the file
   * list, the template list (each when fetched and sent by the service).
   */
  etags?: { config?: string | undefined; files?: string | undefined; templates?: string | undefined } | undefined;
  /**
   * HTTP requests made in total: one per format, file and listing when nothing failed
   * (`--format json,yaml,env` is 3 requests), plus one per retry.
   */
  requests: number;
  /** Requests that failed and were retried (0 when nothing failed). */
  retries: number;
}

/** Injected time, randomness and observers of {@link fetchConfig}. */
export interface FetchDeps extends RetryDeps {
  /** Called when a re-read of the TLS files found new bytes, or failed and the last good material was kept. */
  onTlsReload?(info: TlsReloadInfo): void;
}

/** Default {@link FetchDeps}: the real clock and `Math.random`. */
export const realFetchDeps: FetchDeps = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

/** State shared by every request of one fetch: one client, one deadline, one retry budget. */
interface Session {
  readonly opts: FetchOptions;
  readonly deps: FetchDeps;
  readonly client: TlsClient;
  readonly budget: RetryBudget;
}

/**
 * One GET with the retry policy: transport failures, 5xx and 429 are retried (a new
 * connection each time) until the session deadline; any other status is final; a 200 is
 * handed to `check`, which returns the value or throws a final error.
 *
 * @param target - what is fetched, for messages (`format properties`, `file list`, ...).
 * @param ref - the ref the request asks for (for messages).
 */
function getWithRetry<T>(s: Session, url: URL, accept: string, target: string, ref: string | undefined, check: (res: RawResponse) => T): Promise<T> {
  const { opts, deps } = s;
  return retryUntilDeadline(
    s.budget,
    deps,
    opts.timeoutMs,
    target,
    async (timeoutMs) => {
      const outcome = await s.client.request(url, accept, timeoutMs);
      if ('failure' in outcome) return classifyTransportError(outcome.failure);
      const { res } = outcome;
      if (res.status === 200) return { value: check(res) };
      const p = problemOf(res);
      if (isRetryableStatus(res.status)) {
        return new Retryable(`HTTP ${res.status}${p.code ? ` ${p.code}` : ''}`, parseRetryAfter(header(res.headers, 'retry-after'), deps.now()));
      }
      const what = `HTTP ${res.status}${p.code ? ` ${p.code}` : ''}${p.text ? `: ${p.text}` : ''}`;
      const subject = `app '${opts.app}'${ref !== undefined ? ` at ref '${ref}'` : ''}`;
      return new FetchError(statusErrorCode(res.status), `config-service refused ${subject} (${target}): ${what}`, {
        status: res.status,
        ...(p.code ? { problemCode: p.code } : {}),
      });
    },
    // After any failure the next attempt opens a new connection: a fresh TLS handshake
    // with the material read for it, and (behind a load balancer) maybe another replica.
    () => s.client.discardConnection(),
  );
}

/**
 * The {@link FetchOptions} that the command-line options describe: one place for `fetch`,
 * `exec`, `watch` and `exec --watch`.
 * @param envMap - ask for the environment map instead of the formats (`exec`, `exec --watch`).
 */
export function fetchOptionsOf(options: Options, tls: TlsMaterial, envMap: boolean): FetchOptions {
  return {
    server: options.server,
    app: options.app,
    profiles: options.profiles,
    ref: options.ref,
    formats: envMap ? [] : options.formats,
    timeoutMs: options.timeoutMs,
    deadlineMs: options.deadlineMs,
    allowEmpty: options.allowEmpty,
    tls,
    tlsFiles: { certFile: options.certFile, keyFile: options.keyFile, caFile: options.caFile },
    envNaming: options.envNaming,
    envMap,
    files: options.files,
    templates: options.templates,
  };
}

/**
 * Fetches one application's configuration, all at one commit: the environment map first
 * (when `envMap`), then every requested format, then the raw files (when `files`), then
 * the rendered templates (when `templates`).
 *
 * The first answer is fetched at `opts.ref` (or the default branch); its `Config-Commit`
 * pins every further request (`ref=<commit>`). Every answer is checked (status, commit,
 * content type, UTF-8, JSON syntax, non-empty unless `allowEmpty`; raw files: safe paths,
 * size and SHA-256) before this resolves, so the caller can publish all or nothing.
 *
 * @throws {@link FetchError} with a code that decides the exit code (64, 65, 66, 69, 77);
 *   `CFG_INIT_ERR_CREDENTIALS` (64) when `opts.tls` is not usable.
 */
export async function fetchConfig(opts: FetchOptions, deps: FetchDeps = realFetchDeps): Promise<FetchResult> {
  const client = new TlsClient({ initial: opts.tls, files: opts.tlsFiles, onReload: deps.onTlsReload?.bind(deps) });
  const s: Session = { opts, deps, client, budget: retryBudget(opts.deadlineMs, deps.now()) };
  const naming = opts.envNaming ?? 'standard';
  let pinned: string | undefined;
  const documents: FetchedDocument[] = [];
  let env: FetchedEnv | undefined;
  let files: FetchedFile[] | undefined;
  let templates: FetchedFile[] | undefined;
  const result: { etags?: FetchResult['etags'] } = {};
  try {
    if (opts.envMap === true) {
      const ref = opts.ref;
      const url = configUrl(opts.server, opts.app, opts.profiles, 'env', ref, naming);
      env = await getWithRetry(s, url, 'application/json', 'environment map', ref, (res) => checkEnvMap(res, undefined, opts.allowEmpty));
      pinned = env.commit;
    }
    for (const format of opts.formats) {
      const ref = pinned ?? opts.ref;
      const url = configUrl(opts.server, opts.app, opts.profiles, format, ref, naming);
      const doc = await getWithRetry(s, url, ACCEPT[format], `format ${format}`, ref, (res) => checkDocument(res, format, pinned, opts.allowEmpty));
      documents.push(doc);
      pinned ??= doc.commit;
    }
    const etags: NonNullable<FetchResult['etags']> = { config: env?.etag ?? documents[0]?.etag };
    for (const kind of ['files', 'templates'] as const) {
      if (opts[kind] !== true) continue;
      const what = kind === 'files' ? 'file' : 'template';
      const ref = pinned ?? opts.ref;
      const list = await getWithRetry(s, filesListUrl(opts.server, opts.app, opts.profiles, ref, kind), 'application/json', `${what} list`, ref, (res) => checkFileList(res, pinned, kind));
      pinned ??= list.commit;
      if (pinned === undefined) throw new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for the ${what} list: no commit (neither Config-Commit nor a commit field)`);
      etags[kind] = list.etag;
      const at = pinned;
      const got: FetchedFile[] = [];
      for (const entry of list.entries) {
        const url = fileUrl(opts.server, opts.app, entry.path, opts.profiles, at, kind);
        got.push(await getWithRetry(s, url, 'application/octet-stream, */*;q=0.5', `${what} '${clean(entry.path, 200)}'`, at, (res) => checkFile(res, entry, at, kind)));
      }
      if (kind === 'files') files = got;
      else templates = got;
    }
    result.etags = etags;
  } finally {
    client.close();
  }
  return { commit: pinned ?? '', documents, env: env?.env, envSha256: env?.sha256, files, templates, etags: result.etags, requests: s.budget.attempts, retries: s.budget.retries };
}
