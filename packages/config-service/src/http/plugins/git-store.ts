/**
 * One repository as the HTTP layer reads it (SPEC §4): a local path read in place, or a
 * remote mirrored into the data directory and kept fresh by polling, with its reader, its
 * state, and one coalescing sync trigger. `repositories.ts` maps applications to these.
 */
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import type { FastifyBaseLogger } from 'fastify';
import { AppConfigReader, type AppConfigReaderOptions, type DocumentParser } from '../../config/app-config.js';
import { CFG_ERR_REPO_AUTH_FAILED, CFG_ERR_REPO_UNAVAILABLE, CFG_ERR_SETTINGS_INVALID, withRetryAfter } from '../../errors.js';
import { GitCredentials, splitCredentials } from '../../git/credentials.js';
import { GitMirror, type MirrorStatus, type SyncResult } from '../../git/mirror.js';
import { GitRepository, findGitdir, type RefSnapshot } from '../../git/repository.js';
import { SyncTrigger } from '../../git/sync-trigger.js';
import type { GitSettings, RepositorySettings } from '../../settings/schema.js';

/** The repository a request reads from, and its state. */
export interface GitStore {
  /** `repositories[].name`, or `<template name>/<app>` for a per-application repository. */
  readonly name: string;
  readonly reader: AppConfigReader;
  readonly repository: GitRepository;
  readonly mirror: GitMirror | undefined;
  /** True once configuration can be served: a local repo, or a checked mirror. */
  ready(): boolean;
  /**
   * Resolves `ref` (default: the configured branch) to one commit id.
   * @throws CFG_ERR_REPO_UNAVAILABLE / CFG_ERR_REPO_AUTH_FAILED (503, with `Retry-After`)
   *   while there is no mirror to serve
   * @throws CFG_ERR_INVALID_REF (400), CFG_ERR_REF_NOT_FOUND (404)
   */
  resolve(ref?: string): Promise<{ commit: string; ref: string }>;
  /**
   * A sync that starts no earlier than this call, shared with every request arriving
   * meanwhile (webhooks, admin, other replicas); `undefined` for a local repository.
   */
  requestSync(): Promise<SyncResult> | undefined;
  /** Checks the mirror on disk, syncs once (a failure is logged), then polls (remote only). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What {@link createGitStore} needs besides the entry. */
export interface GitStoreOptions {
  readonly dataDir: string;
  readonly git: GitSettings;
  readonly logger: FastifyBaseLogger;
  /** Environment to read a `passwordEnv` credential from. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Per-application repositories: the name, URL and folder instead of the entry's. */
  readonly instance?: { readonly name: string; readonly url: string; readonly gitdir: string; readonly cacheEntries: number } | undefined;
  /** The document parser (limits, worker threads; `DocumentParserPool.parse`); default: inline. */
  readonly parse?: DocumentParser | undefined;
  /**
   * A worker of `server.workers`: the primary process owns the remote mirrors (fetches,
   * polling, webhooks' syncs); this process only reads the mirror on disk at the snapshot
   * the primary publishes to it, and asks the primary for syncs.
   */
  readonly follower?: MirrorFollower | undefined;
}

/** How a worker process follows a mirror the primary owns (`cluster/worker.ts`). */
export interface MirrorFollower {
  /** The snapshot the primary has published for repository `name` now (null: none yet). */
  snapshot(name: string): Promise<RefSnapshot | null>;
  /** Calls `listener` with each snapshot the primary publishes for `name` later. */
  onSnapshot(name: string, listener: (snapshot: RefSnapshot | null) => void): void;
  /** Asks the primary to sync `name` (coalesced there) and waits for the result. */
  requestSync(name: string): Promise<SyncResult>;
}

/**
 * The credentials of an entry: `auth.passwordFile` is re-read on every fetch; a missing
 * file at start-up is a settings error (it names the setting, never the content).
 * @throws CFG_ERR_SETTINGS_INVALID
 */
function credentialsOf(repo: RepositorySettings, url: string, env: NodeJS.ProcessEnv): GitCredentials {
  const split = splitCredentials(url);
  if (!repo.auth) return new GitCredentials({ username: split.username, password: split.password });
  let password: string | undefined;
  if (repo.auth.passwordFile) {
    try {
      readFileSync(repo.auth.passwordFile);
    } catch (err) {
      throw new CFG_ERR_SETTINGS_INVALID(`  repositories.${repo.name}.auth.passwordFile: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else if (repo.auth.passwordEnv) {
    password = env[repo.auth.passwordEnv];
    if (password === undefined) throw new CFG_ERR_SETTINGS_INVALID(`  repositories.${repo.name}.auth.passwordEnv: variable ${repo.auth.passwordEnv} is not set`);
  }
  return new GitCredentials({ username: repo.auth.username, password, passwordFile: repo.auth.passwordFile });
}

/** The 503 a request gets while a mirror has nothing to serve, with `Retry-After`. */
export function unavailableError(name: string, mirror: GitMirror): Error {
  const status: MirrorStatus = mirror.status;
  let err: Error;
  if (status.lastErrorCode === 'CFG_ERR_REPO_AUTH_FAILED') err = new CFG_ERR_REPO_AUTH_FAILED(name);
  else if (status.refused !== null && status.failures === 0) err = new CFG_ERR_REPO_UNAVAILABLE(name, 'the mirror on disk was refused; it is being cloned again');
  else err = new CFG_ERR_REPO_UNAVAILABLE(name, status.failures > 0 ? 'no mirror yet and the last sync failed' : 'no mirror yet; the first sync is running');
  return withRetryAfter(err, mirror.retryAfterSeconds() ?? 1);
}

/**
 * Opens the repository described by `repo` (no network I/O; {@link GitStore.start} syncs).
 * @throws CFG_ERR_SETTINGS_INVALID for unreadable credentials
 * @throws CFG_ERR_REPO_UNAVAILABLE when a local `path` is not a Git repository
 */
export async function createGitStore(repo: RepositorySettings, opts: GitStoreOptions): Promise<GitStore> {
  const readerOptions: AppConfigReaderOptions = {
    ...(opts.parse !== undefined && { parse: opts.parse }),
    ...(opts.instance !== undefined && { parsedCacheEntries: opts.instance.cacheEntries }),
  };
  if (repo.path) {
    const repository = new GitRepository({ name: repo.name, gitdir: await findGitdir(repo.path), defaultBranch: repo.branch });
    const reader = new AppConfigReader(repository, repo.layout, readerOptions);
    // Resolving a ref reads ref files from disk; under load that costs more than serving a
    // cached response, so a resolution is reused for refCacheMs (a new commit in the local
    // repository is served at most that much later). Mirrors resolve from memory.
    const resolved = repo.refCacheMs > 0 ? new LRUCache<string, { commit: string; ref: string }>({ max: 1000, ttl: repo.refCacheMs }) : undefined;
    return {
      name: repo.name,
      reader,
      repository,
      mirror: undefined,
      ready: () => true,
      resolve: async (ref) => {
        const key = ref ?? '';
        const hit = resolved?.get(key);
        if (hit) return hit;
        const result = await repository.resolveRef(ref);
        resolved?.set(key, result);
        return result;
      },
      requestSync: () => undefined,
      start: async () => {},
      stop: async () => {},
    };
  }
  const name = opts.instance?.name ?? repo.name;
  const url = opts.instance?.url ?? (repo.url as string);
  const credentials = credentialsOf(repo, url, opts.env ?? process.env);
  const mirror = new GitMirror({
    name,
    url,
    dataDir: opts.dataDir,
    ...(opts.instance && { gitdir: opts.instance.gitdir, treeCacheEntries: opts.instance.cacheEntries }),
    defaultBranch: repo.branch,
    credentials,
    pollIntervalMs: repo.pollIntervalMs,
    connectTimeoutMs: opts.git.connectTimeoutMs,
    idleTimeoutMs: opts.git.idleTimeoutMs,
    syncTimeoutMs: opts.git.syncTimeoutMs,
    retryMinMs: opts.git.retryMinMs,
    retryMaxMs: opts.git.retryMaxMs,
    // Every mirror line carries `repo` itself: no child binding, so the key appears once.
    logger: opts.logger,
  });
  const reader = new AppConfigReader(mirror.repository, repo.layout, readerOptions);
  // How a mirror is read, the same in a worker and in the process that fetches.
  const reads: Pick<GitStore, 'name' | 'reader' | 'repository' | 'mirror' | 'ready' | 'resolve'> = {
    name,
    reader,
    repository: mirror.repository,
    mirror,
    ready: () => mirror.ready,
    resolve: async (ref) => {
      if (!mirror.ready) throw unavailableError(name, mirror);
      return mirror.repository.resolveRef(ref);
    },
  };
  const follower = opts.follower;
  if (follower !== undefined) {
    // A worker: reads what the primary published; never fetches.
    return {
      ...reads,
      requestSync: () => follower.requestSync(name),
      start: async () => {
        follower.onSnapshot(name, (snapshot) => mirror.repository.publishSnapshot(snapshot));
        mirror.repository.publishSnapshot(await follower.snapshot(name));
      },
      stop: async () => {},
    };
  }
  const trigger = new SyncTrigger(() => mirror.sync(), () => mirror.syncing);
  return {
    ...reads,
    requestSync: () => trigger.request(),
    start: async () => {
      await mirror.open();
      await mirror.sync().catch((err: Error & { code?: string }) => {
        opts.logger.warn({ repo: name, code: err.code, reason: mirror.status.lastError, ready: mirror.ready }, 'initial sync failed; serving from the mirror on disk if there is one');
      });
      mirror.start();
    },
    stop: () => mirror.stop(),
  };
}
