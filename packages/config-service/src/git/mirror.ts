/**
 * A bare mirror of a remote HTTP(S) smart-protocol repository, kept fresh with
 * isomorphic-git, from which configuration is read (SPEC §4, §11; cases 14 and 15).
 *
 * Layout: `<dataDir>/mirrors/<name>.git` (bare), branches under `refs/remotes/origin/`,
 * tags under `refs/tags/`, plus `config-service-snapshot.json`: the refs and packs of the
 * last successful sync. Reads ({@link GitMirror.repository}) only ever see that snapshot:
 * isomorphic-git's fetch rewrites refs before the pack holding their objects is written,
 * so a fetch in progress, or one that failed half-way, never shows through.
 *
 * Fetching (SPEC §11): every sync fetches all branches and tags (`singleBranch: false`),
 * which makes isomorphic-git offer every local ref as a "have", so a new branch costs only
 * its new objects; `prune` and `pruneTags` drop what the remote dropped, and a force-push
 * simply moves the remote-tracking ref (logged, counted).
 *
 * Credentials (case 15): taken out of the URL ({@link splitCredentials}) and given to
 * isomorphic-git through `onAuth` only; a refused login cancels at once (`onAuthFailure`),
 * and every message that leaves this module passes through {@link redactSecrets}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { addRemote, fetch, init, isDescendent, listRefs, readObject, resolveRef } from 'isomorphic-git';
import type { GitAuth, HttpClient } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
import { CFG_ERR_REPO_AUTH_FAILED, CFG_ERR_REPO_UNAVAILABLE, CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { redactSecrets, splitCredentials } from './credentials.js';
import { GitRepository, type RefSnapshot } from './repository.js';

export { redactSecrets, splitCredentials } from './credentials.js';
export type { SplitUrl } from './credentials.js';

/** pino-compatible logger: `(object, message)`. */
export interface MirrorLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  debug(obj: Record<string, unknown>, msg: string): void;
}

/** Options of {@link GitMirror}. */
export interface GitMirrorOptions {
  /** Repository name: `[A-Za-z0-9][A-Za-z0-9._-]*`; names the mirror directory and appears in logs. */
  readonly name: string;
  /** Remote URL, `http:` or `https:`; credentials embedded in it are taken out (never logged). */
  readonly url: string;
  /** Service data directory; the mirror lives in `<dataDir>/mirrors/<name>.git`. */
  readonly dataDir: string;
  /** Branch served when a request names no ref; a sync fails when the remote lacks it. */
  readonly defaultBranch: string;
  /** Credentials already read by the caller from a file or env var; override those in the URL. */
  readonly credentials?: { readonly username?: string; readonly password?: string };
  /** Polling period in ms after {@link GitMirror.start}; default 30000; 0 = no polling. */
  readonly pollIntervalMs?: number;
  /** Longest one sync may take, in ms, before it is abandoned as failed; default 120000. */
  readonly syncTimeoutMs?: number;
  /** Where sync events go (never with a credential). */
  readonly logger: MirrorLogger;
}

/** One ref a sync changed. Ref names are the remote's (`refs/heads/main`, `refs/tags/v1`). */
export interface RefUpdate {
  readonly ref: string;
  /** Object id before, or `null` for a new ref. */
  readonly from: string | null;
  /** Object id after, or `null` for a ref deleted on the remote. */
  readonly to: string | null;
  /** `true` for a non-fast-forward move (force-push, or a tag moved). */
  readonly forced: boolean;
}

/** Outcome of a successful {@link GitMirror.sync}. */
export interface SyncResult {
  /** `true` when this sync created the mirror. */
  readonly initial: boolean;
  /** Commit at the head of the default branch after the sync. */
  readonly commit: string;
  /** Refs created, moved or deleted (empty when nothing changed). */
  readonly updates: readonly RefUpdate[];
  /** How many of `updates` were non-fast-forward. */
  readonly forcedUpdates: number;
  /** Wall time of the sync in ms. */
  readonly durationMs: number;
}

/** Counters of a mirror, for `/health/ready` and metrics. */
export interface MirrorStats {
  /** Successful syncs. */
  readonly syncs: number;
  /** Failed syncs. */
  readonly failures: number;
  /** Non-fast-forward ref moves followed since start. */
  readonly forcedUpdates: number;
  /** End of the last successful sync. */
  readonly lastSuccessAt?: Date;
  /** Message of the last failure (sanitized: no credential in any form); cleared by a success. */
  readonly lastError?: string;
  /** Code of the last failure (`CFG_ERR_REPO_UNAVAILABLE` or `CFG_ERR_REPO_AUTH_FAILED`); cleared by a success. */
  readonly lastErrorCode?: string;
}

const SNAPSHOT_FILE = 'config-service-snapshot.json';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REMOTE = 'origin';

interface SnapshotFile {
  readonly version: 1;
  readonly refs: Record<string, string>;
  readonly packs: string[];
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Remote-side name of a mirror ref: `refs/remotes/origin/x` → `refs/heads/x`. */
function remoteName(localRef: string): string {
  const prefix = `refs/remotes/${REMOTE}/`;
  return localRef.startsWith(prefix) ? `refs/heads/${localRef.slice(prefix.length)}` : localRef;
}

/** Loads a snapshot file, or null when absent, unreadable or naming a pack no longer on disk. */
function loadSnapshot(gitdir: string): RefSnapshot | null {
  const file = nodePath.join(gitdir, SNAPSHOT_FILE);
  if (!existsSync(file)) return null;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<SnapshotFile>;
    if (parsed.version !== 1 || typeof parsed.refs !== 'object' || parsed.refs === null || !Array.isArray(parsed.packs)) {
      return null;
    }
    for (const p of parsed.packs) {
      if (!existsSync(nodePath.join(gitdir, 'objects', 'pack', p))) return null;
    }
    return { refs: new Map(Object.entries(parsed.refs)), packs: new Set(parsed.packs) };
  } catch {
    return null;
  }
}

/**
 * A bare mirror of one remote repository.
 *
 * Call {@link sync} once at start-up (a failure is fine when {@link ready} is already true:
 * the mirror on disk serves), then {@link start} to poll; {@link stop} on shutdown.
 */
export class GitMirror {
  /** Repository name. */
  readonly name: string;
  /** The remote URL without credentials (safe to log and show). */
  readonly url: string;
  /** Absolute path of the bare mirror. */
  readonly gitdir: string;
  /** Branch served by default. */
  readonly defaultBranch: string;
  /** Reads of the mirror's last good state (branches under `refs/remotes/origin/`). */
  readonly repository: GitRepository;

  readonly #logger: MirrorLogger;
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #secrets: string[];
  readonly #pollMs: number;
  readonly #timeoutMs: number;
  readonly #cache: object = {};
  #inflight: Promise<SyncResult> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #stats: { syncs: number; failures: number; forcedUpdates: number; lastSuccessAt?: Date; lastError?: string; lastErrorCode?: string } = {
    syncs: 0,
    failures: 0,
    forcedUpdates: 0,
  };

  /**
   * Reads the snapshot of an existing mirror synchronously (so {@link ready} is right at once
   * after a restart with the remote down); no network I/O.
   *
   * @throws CFG_ERR_SETTINGS_INVALID when the name is not a safe directory name or the URL
   *   is not `http(s)` (the message never contains the URL).
   */
  constructor(options: GitMirrorOptions) {
    if (!NAME.test(options.name)) {
      throw new CFG_ERR_SETTINGS_INVALID(`repository name ${JSON.stringify(options.name)} must match ${NAME.source}`);
    }
    const split = splitCredentials(options.url);
    if (!/^https?:\/\//i.test(split.url)) {
      throw new CFG_ERR_SETTINGS_INVALID(`repository '${options.name}': the URL must start with http:// or https://`);
    }
    this.name = options.name;
    this.url = split.url;
    this.defaultBranch = options.defaultBranch;
    this.#logger = options.logger;
    this.#username = options.credentials?.username ?? split.username;
    this.#password = options.credentials?.password ?? split.password;
    const secrets: string[] = [];
    if (this.#password !== undefined && this.#password !== '') {
      secrets.push(this.#password, `${this.#username ?? ''}:${this.#password}`);
    } else if (this.#username !== undefined && this.#username !== '') {
      // A token given as the user name (GitHub style) is the secret itself.
      secrets.push(this.#username, `${this.#username}:`);
    }
    this.#secrets = secrets;
    this.#pollMs = options.pollIntervalMs ?? 30_000;
    this.#timeoutMs = options.syncTimeoutMs ?? 120_000;
    this.gitdir = nodePath.resolve(options.dataDir, 'mirrors', `${options.name}.git`);
    this.repository = new GitRepository({
      name: options.name,
      gitdir: this.gitdir,
      defaultBranch: options.defaultBranch,
      remoteName: REMOTE,
      cache: this.#cache,
    });
    const snapshot = loadSnapshot(this.gitdir);
    if (snapshot !== null) this.repository.publishSnapshot(snapshot);
  }

  /** `true` when a mirror holding the default branch is on disk and readable. */
  get ready(): boolean {
    return this.repository.snapshot?.refs.has(`refs/remotes/${REMOTE}/${this.defaultBranch}`) === true;
  }

  /** A copy of the counters. */
  get stats(): MirrorStats {
    return { ...this.#stats };
  }

  /** Removes every credential (plain, URL-encoded, base64) from `text`. */
  redact(text: string): string {
    return redactSecrets(text, this.#secrets);
  }

  /** The sync in progress (started by polling, a webhook or an admin), or `null`. */
  get syncing(): Promise<SyncResult> | null {
    return this.#inflight;
  }

  /**
   * Brings the mirror up to date: creates it (init bare + fetch) when absent, fetches
   * otherwise. Concurrent calls share one in-flight sync.
   *
   * @returns what changed (see {@link SyncResult}).
   * @throws CFG_ERR_REPO_AUTH_FAILED (503) when the server refuses the credentials (HTTP 401/403).
   * @throws CFG_ERR_REPO_UNAVAILABLE (503) when the remote cannot be reached or answers
   *   wrongly, or lacks the default branch; the reason is generic and sanitized. The last good
   *   mirror keeps serving ({@link ready} is unchanged).
   */
  sync(): Promise<SyncResult> {
    if (this.#inflight === null) {
      const p = this.#syncOnce().finally(() => {
        if (this.#inflight === p) this.#inflight = null;
      });
      this.#inflight = p;
    }
    return this.#inflight;
  }

  /** Starts polling every `pollIntervalMs` (no-op when 0 or already started); the timer is unref'd. */
  start(): void {
    if (this.#polling || this.#pollMs <= 0) return;
    this.#polling = true;
    this.#schedule();
  }

  /** Stops polling and waits for an in-flight sync to settle (its failure is not rethrown). */
  async stop(): Promise<void> {
    this.#polling = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const inflight = this.#inflight;
    if (inflight !== null) await inflight.then(
      () => undefined,
      () => undefined,
    );
  }

  #schedule(): void {
    if (!this.#polling) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.sync()
        .catch(() => undefined) // already logged and counted
        .finally(() => this.#schedule());
    }, this.#pollMs);
    this.#timer.unref();
  }

  async #syncOnce(): Promise<SyncResult> {
    const started = Date.now();
    this.#logger.debug({ repo: this.name, url: this.url }, 'git mirror sync started');
    try {
      const result = await this.#fetchAndPublish();
      this.#stats.syncs++;
      this.#stats.forcedUpdates += result.forcedUpdates;
      this.#stats.lastSuccessAt = new Date();
      delete this.#stats.lastError;
      delete this.#stats.lastErrorCode;
      const durationMs = Date.now() - started;
      this.#logger.debug(
        { repo: this.name, commit: result.commit, updates: result.updates.length, durationMs },
        'git mirror sync done',
      );
      return { ...result, durationMs };
    } catch (err) {
      const out = this.#classify(err);
      this.#stats.failures++;
      this.#stats.lastError = out.message;
      this.#stats.lastErrorCode = out.code;
      const log = { repo: this.name, code: out.code, reason: out.message, ready: this.ready };
      if (this.ready) this.#logger.warn(log, 'git mirror sync failed; the last good mirror keeps serving');
      else this.#logger.error(log, 'git mirror sync failed; no mirror to serve');
      throw out;
    }
  }

  async #fetchAndPublish(): Promise<Omit<SyncResult, 'durationMs'>> {
    const initial = !existsSync(nodePath.join(this.gitdir, 'HEAD'));
    let workdir = this.gitdir;
    if (initial) {
      workdir = `${this.gitdir}.tmp-${process.pid}-${Date.now()}`;
      await mkdir(nodePath.dirname(this.gitdir), { recursive: true });
      await init({ fs, gitdir: workdir, bare: true, defaultBranch: this.defaultBranch });
      await addRemote({ fs, gitdir: workdir, remote: REMOTE, url: this.url });
    } else if (this.repository.snapshot === null) {
      await this.#recover();
    }
    const before = this.repository.snapshot?.refs ?? new Map<string, string>();
    try {
      await this.#fetch(workdir);
      const snapshot = await this.#readSnapshot(workdir);
      const head = snapshot.refs.get(`refs/remotes/${REMOTE}/${this.defaultBranch}`);
      if (head === undefined) throw new NoDefaultBranch();
      await this.#writeSnapshot(workdir, snapshot);
      if (initial) {
        // A directory left without HEAD (crash during an earlier first sync) is replaced.
        await rm(this.gitdir, { recursive: true, force: true });
        await rename(workdir, this.gitdir);
      }
      const updates = await this.#diff(before, snapshot.refs);
      this.repository.publishSnapshot(snapshot);
      for (const u of updates) {
        if (u.forced) this.#logger.info({ repo: this.name, ref: u.ref, from: u.from, to: u.to, forced: true }, 'git ref force-updated');
        else if (u.to === null) this.#logger.info({ repo: this.name, ref: u.ref, from: u.from, deleted: true }, 'git ref deleted');
        else this.#logger.debug({ repo: this.name, ref: u.ref, from: u.from, to: u.to }, 'git ref updated');
      }
      const commit = (await this.repository.resolveRef()).commit;
      return { initial, commit, updates, forcedUpdates: updates.filter((u) => u.forced).length };
    } finally {
      if (initial && workdir !== this.gitdir) await rm(workdir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async #fetch(gitdir: string): Promise<void> {
    const controller = new AbortController();
    const http: HttpClient = { request: (req) => nodeHttp.request({ ...req, signal: controller.signal }) };
    const onAuth = (): GitAuth =>
      this.#username === undefined && this.#password === undefined
        ? { cancel: true }
        : { username: this.#username ?? '', password: this.#password ?? '' };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
      }, this.#timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([
        fetch({
          fs,
          http,
          gitdir,
          cache: this.#cache,
          url: this.url,
          remote: REMOTE,
          ref: this.defaultBranch,
          remoteRef: this.defaultBranch,
          singleBranch: false,
          tags: true,
          prune: true,
          pruneTags: true,
          onAuth,
          onAuthFailure: () => ({ cancel: true }),
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Refs (branches, tags) and pack indexes as they are on disk now. */
  async #readSnapshot(gitdir: string): Promise<RefSnapshot> {
    const refs = new Map<string, string>();
    for (const prefix of [`refs/remotes/${REMOTE}`, 'refs/tags']) {
      for (const name of await listRefs({ fs, gitdir, filepath: prefix })) {
        if (prefix !== 'refs/tags' && name === 'HEAD') continue;
        const full = `${prefix}/${name}`;
        refs.set(full, await resolveRef({ fs, gitdir, ref: full }));
      }
    }
    const files = await readdir(nodePath.join(gitdir, 'objects', 'pack')).catch(() => [] as string[]);
    const packs = new Set(files.filter((f) => f.endsWith('.idx') && files.includes(`${f.slice(0, -4)}.pack`)));
    return { refs, packs };
  }

  async #writeSnapshot(gitdir: string, snapshot: RefSnapshot): Promise<void> {
    const data: SnapshotFile = { version: 1, refs: Object.fromEntries(snapshot.refs), packs: [...snapshot.packs] };
    const file = nodePath.join(gitdir, SNAPSHOT_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(data)}\n`);
    await rename(tmp, file);
  }

  /** A mirror without a usable snapshot file: keep what on disk is complete. */
  async #recover(): Promise<void> {
    const disk = await this.#readSnapshot(this.gitdir).catch(() => null);
    if (disk === null) return;
    const refs = new Map<string, string>();
    for (const [ref, oid] of disk.refs) {
      const ok = await readObject({ fs, gitdir: this.gitdir, oid, format: 'deflated', cache: this.#cache }).then(
        () => true,
        () => false,
      );
      if (ok) refs.set(ref, oid);
    }
    const snapshot: RefSnapshot = { refs, packs: disk.packs };
    await this.#writeSnapshot(this.gitdir, snapshot);
    this.repository.publishSnapshot(snapshot);
  }

  async #diff(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): Promise<RefUpdate[]> {
    const updates: RefUpdate[] = [];
    for (const [ref, to] of after) {
      const from = before.get(ref);
      if (from === to) continue;
      if (from === undefined) {
        updates.push({ ref: remoteName(ref), from: null, to, forced: false });
        continue;
      }
      let forced = true;
      if (!ref.startsWith('refs/tags/')) {
        forced = !(await isDescendent({ fs, gitdir: this.gitdir, oid: to, ancestor: from, depth: -1, cache: this.#cache }).catch(
          () => false,
        ));
      }
      updates.push({ ref: remoteName(ref), from, to, forced });
    }
    for (const [ref, from] of before) {
      if (!after.has(ref)) updates.push({ ref: remoteName(ref), from, to: null, forced: false });
    }
    return updates;
  }

  /** Turns any failure into a sanitized CFG_ERR_REPO_AUTH_FAILED / CFG_ERR_REPO_UNAVAILABLE. */
  #classify(err: unknown): Error & { code: string; statusCode?: number } {
    const code = errorCode(err);
    if (code === 'CFG_ERR_REPO_AUTH_FAILED' || code === 'CFG_ERR_REPO_UNAVAILABLE') {
      return err as Error & { code: string };
    }
    if (code === 'UserCanceledError') return new CFG_ERR_REPO_AUTH_FAILED(this.name);
    if (code === 'HttpError') {
      const data = (err as { data?: { statusCode?: unknown } }).data;
      const status = typeof data?.statusCode === 'number' ? data.statusCode : 0;
      if (status === 401 || status === 403) return new CFG_ERR_REPO_AUTH_FAILED(this.name);
      return new CFG_ERR_REPO_UNAVAILABLE(this.name, `fetch failed: HTTP ${status}`);
    }
    let reason: string;
    if (err instanceof NoDefaultBranch || code === 'NotFoundError') {
      reason = `default branch '${this.defaultBranch}' not found on the remote`;
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
      reason = `fetch failed: ${this.redact(errorMessage(err)).slice(0, 200)}`;
    }
    return new CFG_ERR_REPO_UNAVAILABLE(this.name, this.redact(reason));
  }
}

class NoDefaultBranch extends Error {}
