/**
 * One fetch of a mirror from its remote (isomorphic-git over {@link createGitHttpClient}),
 * bounded by the sync deadline, and the mapping of every way it can fail to a sanitized
 * error (SPEC §4, case 15).
 *
 * Every branch and tag is fetched (`singleBranch: false`), so isomorphic-git offers every
 * local ref as a "have" and a new branch costs only its new objects; `prune` and
 * `pruneTags` drop what the remote dropped. isomorphic-git insists on one ref it can find
 * in the remote's advertisement: the default branch is asked for, and when the remote no
 * longer has it, the refs are listed and the fetch is made again naming another branch, so
 * every other update still lands (the caller then reports the missing branch).
 */
import * as fs from 'node:fs';
import { fetch, listServerRefs } from 'isomorphic-git';
import type { GitAuth } from 'isomorphic-git';
import { CFG_ERR_REPO_AUTH_FAILED, CFG_ERR_REPO_UNAVAILABLE } from '../errors.js';
import { createGitHttpClient, GIT_CONNECT_TIMEOUT, GIT_IDLE_TIMEOUT, type GitHttpTimeouts } from './http-client.js';
import { REMOTE } from './mirror-snapshot.js';

/** What {@link fetchRemote} needs. */
export interface FetchInput {
  readonly gitdir: string;
  readonly url: string;
  readonly defaultBranch: string;
  /** isomorphic-git's cache of this mirror. */
  readonly cache: object;
  /** Credentials to send when the server asks; `undefined` = none configured. */
  readonly credentials: { username?: string; password?: string } | undefined;
  readonly timeouts: GitHttpTimeouts & { readonly syncTimeoutMs: number };
}

/** Outcome of {@link fetchRemote}. */
export interface FetchOutcome {
  /** True when the remote has no branch named like the default branch. */
  readonly defaultBranchMissing: boolean;
  /** True when the remote advertised no ref at all (an empty repository). */
  readonly empty: boolean;
}

/** Error code of a sync that outlived its deadline. */
export const GIT_SYNC_DEADLINE = 'GIT_SYNC_DEADLINE';

function codeOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Fetches every branch and tag of `url` into `gitdir` (remote `origin`).
 *
 * @throws the underlying error (isomorphic-git's, a socket's, {@link GIT_SYNC_DEADLINE}):
 *   pass it to {@link classifyFetchError}.
 */
export async function fetchRemote(input: FetchInput): Promise<FetchOutcome> {
  const controller = new AbortController();
  const client = createGitHttpClient(input.timeouts, controller.signal);
  const creds = input.credentials;
  const onAuth = (): GitAuth => (creds === undefined ? { cancel: true } : { username: creds.username ?? '', password: creds.password ?? '' });
  const common = { fs, http: client.http, gitdir: input.gitdir, cache: input.cache, url: input.url, remote: REMOTE, onAuth, onAuthFailure: (): GitAuth => ({ cancel: true }) };
  const once = async (): Promise<FetchOutcome> => {
    try {
      await fetch({ ...common, ref: input.defaultBranch, remoteRef: input.defaultBranch, singleBranch: false, tags: true, prune: true, pruneTags: true });
      return { defaultBranchMissing: false, empty: false };
    } catch (err) {
      if (codeOf(err) !== 'NotFoundError') throw err;
    }
    // The default branch is gone: fetch everything else, naming a branch that exists.
    const refs = await listServerRefs({ http: client.http, url: input.url, onAuth, onAuthFailure: common.onAuthFailure, prefix: 'refs/heads/', protocolVersion: 1 });
    const other = refs.find((r) => r.ref.startsWith('refs/heads/'));
    if (other === undefined) return { defaultBranchMissing: true, empty: true };
    const branch = other.ref.slice('refs/heads/'.length);
    await fetch({ ...common, ref: branch, remoteRef: branch, singleBranch: false, tags: true, prune: true, pruneTags: true });
    return { defaultBranchMissing: true, empty: false };
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(Object.assign(new Error(`the sync did not finish within ${input.timeouts.syncTimeoutMs} ms`), { code: GIT_SYNC_DEADLINE }));
    }, input.timeouts.syncTimeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([once(), deadline]);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** A fetch whose result was refused by the integrity checks (the reason names refs and objects). */
export class IncompleteFetchError extends Error {
  readonly code = 'GIT_INCOMPLETE_FETCH';
}

/** A sanitized sync failure: the problem code of the service and the remote's HTTP status, if any. */
export type SyncError = Error & { code: string; statusCode?: number; remoteStatus?: number };

/**
 * Turns any failure into CFG_ERR_REPO_AUTH_FAILED (HTTP 401/403 from the remote, or a
 * refused login) or CFG_ERR_REPO_UNAVAILABLE with a generic reason. Messages pass through
 * `redact`; a remote HTTP status is kept in `remoteStatus`.
 *
 * @param name - the repository name, for the message.
 * @param timeouts - to name the setting that expired.
 */
export function classifyFetchError(err: unknown, name: string, timeouts: FetchInput['timeouts'], redact: (s: string) => string): SyncError {
  const code = codeOf(err);
  if (code === 'CFG_ERR_REPO_AUTH_FAILED' || code === 'CFG_ERR_REPO_UNAVAILABLE') return err as SyncError;
  if (code === 'UserCanceledError') return new CFG_ERR_REPO_AUTH_FAILED(name) as SyncError;
  if (code === 'HttpError') {
    const data = (err as { data?: { statusCode?: unknown } }).data;
    const status = typeof data?.statusCode === 'number' ? data.statusCode : 0;
    if (status === 401 || status === 403) return Object.assign(new CFG_ERR_REPO_AUTH_FAILED(name), { remoteStatus: status }) as SyncError;
    return Object.assign(new CFG_ERR_REPO_UNAVAILABLE(name, `fetch failed: HTTP ${status}`), { remoteStatus: status }) as SyncError;
  }
  let reason: string;
  if (err instanceof IncompleteFetchError) {
    reason = `the fetch was refused: ${err.message}; the previous refs keep serving`;
  } else if (code === 'GIT_CREDENTIALS_UNREADABLE') {
    reason = `credentials: ${(err as Error).message}`;
  } else if (code === GIT_SYNC_DEADLINE) {
    reason = `the sync did not finish within git.syncTimeoutMs (${timeouts.syncTimeoutMs} ms)`;
  } else if (code === GIT_CONNECT_TIMEOUT) {
    reason = `fetch failed: no connection within git.connectTimeoutMs (${timeouts.connectTimeoutMs} ms)`;
  } else if (code === GIT_IDLE_TIMEOUT) {
    reason = `fetch failed: the remote sent nothing for git.idleTimeoutMs (${timeouts.idleTimeoutMs} ms)`;
  } else if (code === 'SmartHttpError') {
    reason = 'fetch failed: the server did not answer as a Git smart-HTTP server';
  } else if (code === 'ECONNREFUSED') {
    reason = 'fetch failed: connection refused';
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    reason = 'fetch failed: host not found';
  } else if (code === 'ETIMEDOUT' || code === 'ABORT_ERR') {
    reason = 'fetch failed: timed out';
  } else if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') {
    reason = 'fetch failed: connection reset';
  } else if (code !== undefined && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code)) {
    reason = `fetch failed: TLS error (${code})`;
  } else {
    reason = `fetch failed: ${redact(err instanceof Error ? err.message : String(err)).slice(0, 200)}`;
  }
  return new CFG_ERR_REPO_UNAVAILABLE(name, redact(reason)) as SyncError;
}
