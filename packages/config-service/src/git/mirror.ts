/**
 * A bare mirror of a remote HTTP(S) smart-protocol repository, kept fresh with
 * isomorphic-git, from which configuration is read (SPEC §4, §11; cases 14 and 15).
 *
 * Layout: `<dataDir>/mirrors/<name>.git` (bare; template mirrors get their folder from the
 * caller), branches under `refs/remotes/origin/`, tags under `refs/tags/`, plus the state
 * file `config-service-snapshot.json` (`mirror-snapshot.ts`): the refs and packs of the
 * last successful sync and when it happened. Reads ({@link GitMirror.repository}) only see
 * that snapshot: isomorphic-git's fetch rewrites refs before the pack holding their objects
 * is written, so a fetch in progress, or one that failed half-way, never shows through.
 *
 * Trust (`mirror-integrity.ts`): {@link GitMirror.open} refuses a mirror whose path holds a
 * symbolic link, whose packs are damaged, whose refs point at objects it lacks or whose
 * snapshot disagrees with its refs; it logs the path and the reason, removes what it
 * refused (a link is unlinked, never followed) and the next sync clones into a fresh folder
 * the mirror creates itself. A fetch whose new refs point at objects it did not bring is
 * not published: the refs on disk are put back and the previous snapshot keeps serving.
 *
 * Scheduling: after {@link GitMirror.start}, a successful sync is followed by the next poll
 * (`pollIntervalMs`, none when 0) and a failed one by a retry after an exponential backoff
 * with jitter (`retryMinMs` doubling up to `retryMaxMs`, each delay drawn in [d/2, d]).
 *
 * Credentials (case 15) come from a {@link GitCredentials} read anew for every fetch, are
 * given to isomorphic-git through `onAuth` only, a refused login cancels at once, and every
 * message that leaves this module passes through {@link GitMirror.redact}.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import { addRemote, init, isDescendent } from 'isomorphic-git';
import { CFG_ERR_REPO_UNAVAILABLE, CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { GitCredentials, redactSecrets, splitCredentials } from './credentials.js';
import { classifyFetchError, fetchRemote, IncompleteFetchError, type SyncError } from './mirror-fetch.js';
import { checkMirrorPath, remoteRefName, verifyPacks, verifyRefs } from './mirror-integrity.js';
import { readDiskState, readSnapshotFile, REMOTE, restoreRefs, writeSnapshotFile, type StoredSnapshot } from './mirror-snapshot.js';
import { GitRepository, type RefSnapshot } from './repository.js';
import type { GitMirrorOptions, MirrorLogger, MirrorState, MirrorStats, MirrorStatus, RefUpdate, SyncResult } from './mirror-types.js';

export { redactSecrets, splitCredentials, GitCredentials } from './credentials.js';
export type { SplitUrl } from './credentials.js';

export type { GitMirrorOptions, MirrorLogger, MirrorState, MirrorStats, MirrorStatus, RefUpdate, SyncResult } from './mirror-types.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/**
 * A bare mirror of one remote repository.
 *
 * Call {@link open} (checks the mirror on disk; {@link sync} calls it when not done yet),
 * {@link sync} once (a failure is fine when {@link ready} is true: the mirror on disk
 * serves), then {@link start}; {@link stop} on shutdown.
 */
export class GitMirror {
  readonly name: string;
  /** The remote URL without credentials (safe to log and show). */
  readonly url: string;
  /** Absolute path of the bare mirror. */
  readonly gitdir: string;
  readonly defaultBranch: string;
  /** Reads of the mirror's last good state (branches under `refs/remotes/origin/`). */
  readonly repository: GitRepository;

  readonly #dataDir: string;
  readonly #logger: MirrorLogger;
  readonly #credentials: GitCredentials;
  readonly #pollMs: number;
  readonly #timeouts: { connectTimeoutMs: number; idleTimeoutMs: number; syncTimeoutMs: number };
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #cache: object = {};
  #opened: Promise<void> | null = null;
  #inflight: Promise<SyncResult> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #active = false;
  #stored: StoredSnapshot | null = null;
  #s = {
    syncs: 0,
    failures: 0,
    forcedUpdates: 0,
    consecutiveFailures: 0,
    lastAttemptAt: null as Date | null,
    lastError: null as string | null,
    lastErrorCode: null as string | null,
    nextAttemptAt: null as Date | null,
    refused: null as MirrorStatus['refused'],
  };

  /**
   * No I/O happens here.
   * @throws CFG_ERR_SETTINGS_INVALID when the name is not safe, the URL is not `http(s)`
   *   (the message never contains the URL), or the folder is not inside `dataDir`.
   */
  constructor(options: GitMirrorOptions) {
    if (!NAME.test(options.name)) throw new CFG_ERR_SETTINGS_INVALID(`repository name ${JSON.stringify(options.name)} must match ${NAME.source}`);
    const split = splitCredentials(options.url);
    if (!/^https?:\/\//i.test(split.url)) throw new CFG_ERR_SETTINGS_INVALID(`repository '${options.name}': the URL must start with http:// or https://`);
    this.name = options.name;
    this.url = split.url;
    this.defaultBranch = options.defaultBranch;
    this.#logger = options.logger;
    const given = options.credentials;
    this.#credentials = given instanceof GitCredentials ? given : new GitCredentials({ username: given?.username ?? split.username, password: given?.password ?? split.password });
    this.#pollMs = options.pollIntervalMs ?? 30_000;
    this.#timeouts = { syncTimeoutMs: options.syncTimeoutMs ?? 120_000, connectTimeoutMs: options.connectTimeoutMs ?? 10_000, idleTimeoutMs: options.idleTimeoutMs ?? 60_000 };
    this.#retryMinMs = Math.max(1, options.retryMinMs ?? 1000);
    this.#retryMaxMs = Math.max(this.#retryMinMs, options.retryMaxMs ?? 300_000);
    this.#dataDir = nodePath.resolve(options.dataDir);
    this.gitdir = nodePath.resolve(options.gitdir ?? nodePath.join(this.#dataDir, 'mirrors', `${options.name}.git`));
    const rel = nodePath.relative(this.#dataDir, this.gitdir);
    if (rel === '' || rel.startsWith('..') || nodePath.isAbsolute(rel)) throw new CFG_ERR_SETTINGS_INVALID(`repository '${options.name}': the mirror folder must be inside dataDir`);
    this.repository = new GitRepository({
      name: options.name,
      gitdir: this.gitdir,
      defaultBranch: options.defaultBranch,
      remoteName: REMOTE,
      cache: this.#cache,
      ...(options.treeCacheEntries !== undefined && { treeCacheEntries: options.treeCacheEntries }),
    });
  }

  /** `true` when a checked mirror is published: configuration can be served from it. */
  get ready(): boolean {
    return this.repository.snapshot !== null;
  }

  /** Counters, kept for earlier callers. */
  get stats(): MirrorStats {
    const s = this.#s;
    return {
      syncs: s.syncs,
      failures: s.failures,
      forcedUpdates: s.forcedUpdates,
      ...(this.#stored?.lastSyncAt && { lastSuccessAt: this.#stored.lastSyncAt }),
      ...(s.lastError !== null && { lastError: s.lastError }),
      ...(s.lastErrorCode !== null && { lastErrorCode: s.lastErrorCode }),
    };
  }

  /** The whole state, for readiness and metrics. */
  get status(): MirrorStatus {
    const s = this.#s;
    let state: MirrorState;
    if (s.lastErrorCode === 'CFG_ERR_REPO_AUTH_FAILED') state = 'repo_auth_failed';
    else if (s.lastErrorCode !== null) state = s.refused !== null && !this.ready ? 'mirror_invalid' : 'repo_unavailable';
    else state = this.ready ? 'ok' : 'cloning';
    return {
      state,
      ready: this.ready,
      commit: this.ready ? (this.#stored?.commit ?? null) : null,
      commitFetchedAt: this.ready ? (this.#stored?.commitFetchedAt ?? null) : null,
      lastSyncAt: this.#stored?.lastSyncAt ?? null,
      lastAttemptAt: s.lastAttemptAt,
      lastError: s.lastError,
      lastErrorCode: s.lastErrorCode,
      nextAttemptAt: s.nextAttemptAt,
      syncing: this.#inflight !== null,
      consecutiveFailures: s.consecutiveFailures,
      syncs: s.syncs,
      failures: s.failures,
      forcedUpdates: s.forcedUpdates,
      refused: s.refused,
    };
  }

  /**
   * Seconds a client should wait before asking again (`Retry-After`, RFC 9110 §10.2.3):
   * until the next scheduled attempt, 1 while a sync runs, `undefined` when none is due.
   */
  retryAfterSeconds(now = Date.now()): number | undefined {
    const next = this.#s.nextAttemptAt;
    if (next !== null) return Math.max(1, Math.ceil((next.getTime() - now) / 1000));
    return this.#inflight !== null ? 1 : undefined;
  }

  /** Removes every credential (plain, URL-encoded, base64) from `text`. */
  redact(text: string): string {
    return redactSecrets(text, this.#credentials.secrets());
  }

  /** The sync in progress (started by polling, a webhook or an admin), or `null`. */
  get syncing(): Promise<SyncResult> | null {
    return this.#inflight;
  }

  /**
   * Checks the mirror on disk and publishes its snapshot when it checks out; otherwise logs
   * the path and reason, removes what it refused and leaves the mirror not ready (the next
   * sync clones afresh). Idempotent; never rejects.
   */
  open(): Promise<void> {
    this.#opened ??= this.#open().catch((err: unknown) => this.#refuse(this.gitdir, `the mirror cannot be checked (${(err as { code?: string }).code ?? 'error'})`));
    return this.#opened;
  }

  /**
   * Brings the mirror up to date: clones it into a fresh folder when there is none, fetches
   * otherwise. Concurrent calls share one in-flight sync.
   *
   * @returns what changed (see {@link SyncResult}).
   * @throws CFG_ERR_REPO_AUTH_FAILED (503) when the server refuses the credentials (HTTP 401/403).
   * @throws CFG_ERR_REPO_UNAVAILABLE (503) when the remote cannot be reached or answers
   *   wrongly, the sync outlives its deadline, the fetch was refused by the integrity checks,
   *   or the remote lacks the default branch (every other ref update is applied first). The
   *   last good mirror keeps serving.
   */
  sync(): Promise<SyncResult> {
    if (this.#inflight === null) {
      const p = this.open()
        .then(() => this.#syncOnce())
        .finally(() => {
          if (this.#inflight === p) this.#inflight = null;
          this.#schedule();
        });
      this.#inflight = p;
    }
    return this.#inflight;
  }


  /** Starts polling and retrying (no-op when started); timers are unref'd. */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#schedule();
  }

  /** Stops polling, waits for an in-flight sync to settle (its failure is not rethrown), closes the pack files. */
  async stop(): Promise<void> {
    this.#active = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#s.nextAttemptAt = null;
    const inflight = this.#inflight;
    if (inflight !== null) await inflight.then(() => undefined, () => undefined);
    // Pack files are opened again on the next read, if one comes (an evicted mirror's does not).
    await this.repository.close();
  }

  /** Next poll after a success, backoff with jitter after a failure. */
  #schedule(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#s.nextAttemptAt = null;
    if (!this.#active || this.#inflight !== null) return;
    let delay: number;
    const failures = this.#s.consecutiveFailures;
    if (failures > 0) {
      const base = Math.min(this.#retryMaxMs, this.#retryMinMs * 2 ** Math.min(failures - 1, 30));
      delay = Math.round(base / 2 + Math.random() * (base / 2));
    } else if (this.#pollMs > 0) {
      delay = this.#pollMs;
    } else {
      return;
    }
    this.#s.nextAttemptAt = new Date(Date.now() + delay);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.sync().catch(() => undefined); // logged and counted already
    }, delay);
    this.#timer.unref();
  }

  async #open(): Promise<void> {
    const unsafe = await checkMirrorPath(this.#dataDir, this.gitdir);
    if (unsafe !== null) return this.#refuse(unsafe.path, unsafe.reason);
    // Clones a crash interrupted (`<name>.git.tmp-…`, made by this class) are removed.
    const parent = nodePath.dirname(this.gitdir);
    const prefix = `${nodePath.basename(this.gitdir)}.tmp-`;
    for (const entry of await readdir(parent).catch(() => [] as string[])) {
      if (entry.startsWith(prefix)) await this.#discard(nodePath.join(parent, entry));
    }
    if (!existsSync(nodePath.join(this.gitdir, 'HEAD'))) {
      if (existsSync(this.gitdir)) await this.#discard(this.gitdir); // a clone that never finished
      return;
    }
    const stored = readSnapshotFile(this.gitdir);
    if (stored === 'missing') return this.#refuse(this.gitdir, 'the mirror has no snapshot file');
    if ('invalid' in stored) return this.#refuse(this.gitdir, stored.invalid);
    const snapshot = stored.snapshot;
    const badPack = await verifyPacks(this.gitdir, snapshot.packs);
    if (badPack !== null) return this.#refuse(nodePath.join(this.gitdir, 'objects', 'pack'), badPack);
    const badRef = await verifyRefs(this.gitdir, snapshot, this.defaultBranch);
    if (badRef !== null) return this.#refuse(this.gitdir, badRef);
    const disagreement = await this.#disagreement(snapshot);
    if (disagreement !== null) return this.#refuse(this.gitdir, disagreement);
    const head = snapshot.refs.get(`refs/remotes/${REMOTE}/${this.defaultBranch}`);
    const commit = head === undefined ? null : await this.repository.peelToCommit(head).catch(() => null);
    this.#stored = { ...stored, commit: stored.commit ?? commit };
    this.repository.publishSnapshot(snapshot);
  }

  /**
   * A ref on disk that differs from the snapshot while its object is in the snapshot's
   * packs was not left by a fetch that died (a fetch writes refs before the pack that holds
   * their objects): the snapshot and the refs disagree.
   */
  async #disagreement(snapshot: RefSnapshot): Promise<string | null> {
    const disk = await readDiskState(this.gitdir);
    const view = new GitRepository({ name: this.name, gitdir: this.gitdir, defaultBranch: this.defaultBranch, remoteName: REMOTE, treeCacheEntries: 10 });
    view.publishSnapshot(snapshot);
    try {
      for (const [ref, oid] of disk.refs) {
        const want = snapshot.refs.get(ref);
        if (want === oid) continue;
        if (await view.hasObject(oid).catch(() => false)) {
          return `the snapshot disagrees with the refs: ${remoteRefName(ref)} is ${oid} on disk but ${want ?? 'absent'} in the snapshot`;
        }
      }
      return null;
    } finally {
      await view.close();
    }
  }

  async #refuse(path: string, reason: string): Promise<void> {
    this.#s.refused = { at: new Date(), path, reason };
    this.#s.lastError = `the mirror on disk was refused: ${reason}`;
    this.#s.lastErrorCode = 'CFG_ERR_REPO_UNAVAILABLE';
    this.repository.publishSnapshot(null);
    this.#stored = null;
    this.#logger.error({ repo: this.name, path, reason }, 'git mirror refused; it will be cloned again into a fresh folder');
    await this.#discard(path);
  }

  /** Removes a refused path: a symbolic link is unlinked (its target is never touched), a folder deleted. */
  async #discard(path: string): Promise<void> {
    for (const key of Reflect.ownKeys(this.#cache)) delete (this.#cache as Record<PropertyKey, unknown>)[key];
    const st = await lstat(path).catch(() => null);
    if (st === null) return;
    if (st.isSymbolicLink() || !st.isDirectory()) await unlink(path).catch(() => undefined);
    else await rm(path, { recursive: true, force: true }).catch(() => undefined);
    // A refused component above the mirror (e.g. `mirrors`) also takes the mirror's path away.
  }

  async #syncOnce(): Promise<SyncResult> {
    const started = Date.now();
    this.#s.lastAttemptAt = new Date(started);
    this.#logger.debug({ repo: this.name, url: this.url }, 'git mirror sync started');
    try {
      const result = await this.#fetchAndPublish();
      this.#s.syncs++;
      this.#s.consecutiveFailures = 0;
      this.#s.forcedUpdates += result.sync.forcedUpdates;
      this.#s.lastError = null;
      this.#s.lastErrorCode = null;
      const durationMs = Date.now() - started;
      const out = { ...result.sync, durationMs };
      if (out.updates.length > 0) {
        this.#logger.info(
          { repo: this.name, from: result.headBefore, to: out.commit, forced: out.forcedUpdates > 0, updates: out.updates.length, initial: out.initial, durationMs },
          'git mirror updated',
        );
      } else {
        this.#logger.debug({ repo: this.name, commit: out.commit, updates: 0, durationMs }, 'git mirror sync done');
      }
      return out;
    } catch (err) {
      const out = classifyFetchError(err, this.name, this.#timeouts, (s) => this.redact(s));
      this.#s.failures++;
      this.#s.consecutiveFailures++;
      this.#s.lastError = out.message;
      this.#s.lastErrorCode = out.code;
      const log = { repo: this.name, code: out.code, state: out.code === 'CFG_ERR_REPO_AUTH_FAILED' ? 'repo_auth_failed' : 'repo_unavailable', reason: out.message, ready: this.ready, failures: this.#s.consecutiveFailures };
      if (this.ready) this.#logger.warn(log, 'git mirror sync failed; the last good mirror keeps serving');
      else this.#logger.error(log, 'git mirror sync failed; no mirror to serve');
      throw out;
    }
  }

  async #fetchAndPublish(): Promise<{ sync: Omit<SyncResult, 'durationMs'>; headBefore: string | null }> {
    const unsafe = await checkMirrorPath(this.#dataDir, this.gitdir);
    if (unsafe !== null) await this.#refuse(unsafe.path, unsafe.reason);
    const initial = this.repository.snapshot === null || !existsSync(nodePath.join(this.gitdir, 'HEAD'));
    const before: RefSnapshot = initial ? { refs: new Map(), packs: new Set() } : (this.repository.snapshot as RefSnapshot);
    const headBefore = initial ? null : (this.#stored?.commit ?? null);
    let workdir = this.gitdir;
    if (initial) {
      // A fresh folder this mirror creates itself, renamed into place once complete.
      await mkdir(nodePath.dirname(this.gitdir), { recursive: true });
      workdir = `${this.gitdir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      await init({ fs, gitdir: workdir, bare: true, defaultBranch: this.defaultBranch });
      await addRemote({ fs, gitdir: workdir, remote: REMOTE, url: this.url });
    } else {
      // Undo what a fetch that died or was refused left, so the remote is offered only real objects.
      await restoreRefs(this.gitdir, before.refs);
    }
    let published = false;
    try {
      const credentials = this.#credentials.configured ? this.#credentials.read() : undefined;
      const outcome = await fetchRemote({ gitdir: workdir, url: this.url, defaultBranch: this.defaultBranch, cache: this.#cache, credentials, timeouts: this.#timeouts });
      const disk = await readDiskState(workdir);
      const candidate: RefSnapshot = { refs: outcome.empty ? new Map() : disk.refs, packs: disk.packs };
      const problem = await this.#check(workdir, before, candidate);
      if (problem !== null) throw new IncompleteFetchError(problem);
      const headRef = `refs/remotes/${REMOTE}/${this.defaultBranch}`;
      const head = candidate.refs.get(headRef);
      const view = new GitRepository({ name: this.name, gitdir: workdir, defaultBranch: this.defaultBranch, remoteName: REMOTE, treeCacheEntries: 10 });
      view.publishSnapshot(candidate);
      const commit = head === undefined ? null : await view.peelToCommit(head).finally(() => view.close());
      const now = new Date();
      const stored: StoredSnapshot = {
        snapshot: candidate,
        commit,
        commitFetchedAt: commit !== null && commit === headBefore ? (this.#stored?.commitFetchedAt ?? now) : commit === null ? null : now,
        lastSyncAt: now,
      };
      if (outcome.empty) await restoreRefs(workdir, candidate.refs);
      await writeSnapshotFile(workdir, stored);
      if (initial) {
        await this.#discard(this.gitdir);
        await rename(workdir, this.gitdir);
      }
      const updates = await this.#diff(before.refs, candidate.refs);
      this.#stored = stored;
      this.repository.publishSnapshot(candidate);
      published = true;
      for (const u of updates) {
        if (u.forced) this.#logger.info({ repo: this.name, ref: u.ref, from: u.from, to: u.to, forced: true }, 'git ref force-updated');
        else if (u.to === null) this.#logger.info({ repo: this.name, ref: u.ref, from: u.from, deleted: true }, 'git ref deleted');
        else this.#logger.debug({ repo: this.name, ref: u.ref, from: u.from, to: u.to }, 'git ref updated');
      }
      if (commit === null) {
        // Every other update is applied; requests without a ref now name the missing branch.
        throw new CFG_ERR_REPO_UNAVAILABLE(this.name, `default branch '${this.defaultBranch}' not found on the remote; the other refs were updated`);
      }
      const sync = { initial, commit, updates, forcedUpdates: updates.filter((u) => u.forced).length };
      return { sync, headBefore };
    } catch (err) {
      if (!initial && !published) await restoreRefs(this.gitdir, before.refs).catch(() => undefined);
      throw err;
    } finally {
      if (initial && workdir !== this.gitdir) await rm(workdir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** New packs must be whole and every new or moved ref must point at objects the mirror now holds. */
  async #check(workdir: string, before: RefSnapshot, candidate: RefSnapshot): Promise<string | null> {
    const newPacks = [...candidate.packs].filter((p) => !before.packs.has(p));
    const badPack = await verifyPacks(workdir, newPacks);
    if (badPack !== null) return badPack;
    const changed = new Set([...candidate.refs].filter(([ref, oid]) => before.refs.get(ref) !== oid).map(([ref]) => ref));
    if (changed.size === 0) return null;
    return verifyRefs(workdir, candidate, this.defaultBranch, changed, before.refs.get(`refs/remotes/${REMOTE}/${this.defaultBranch}`));
  }

  async #diff(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): Promise<RefUpdate[]> {
    const updates: RefUpdate[] = [];
    for (const [ref, to] of after) {
      const from = before.get(ref);
      if (from === to) continue;
      if (from === undefined) {
        updates.push({ ref: remoteRefName(ref), from: null, to, forced: false });
        continue;
      }
      let forced = true;
      if (!ref.startsWith('refs/tags/')) {
        forced = !(await isDescendent({ fs, gitdir: this.gitdir, oid: to, ancestor: from, depth: -1, cache: this.#cache }).catch(() => false));
      }
      updates.push({ ref: remoteRefName(ref), from, to, forced });
    }
    for (const [ref, from] of before) {
      if (!after.has(ref)) updates.push({ ref: remoteRefName(ref), from, to: null, forced: false });
    }
    return updates;
  }
}

export type { SyncError };
