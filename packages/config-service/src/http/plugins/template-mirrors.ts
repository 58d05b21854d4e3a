/**
 * The per-application repositories of the template entry (`url` with `{app}`, SPEC §4):
 * cloned on first use, at most `maxMirrors` at once (the least recently read one is
 * removed for a new one), removed after `evictAfterIdleMs` without a read.
 *
 * - First use waits for the clone up to {@link FIRST_USE_WAIT_MS}; past that the request is
 *   503 `repo_unavailable` with `Retry-After` while the clone goes on.
 * - A failed first clone leaves nothing behind (no folder, no metric series): the failure is
 *   remembered for the application (bounded, one entry per name) and answered with
 *   `Retry-After` until its backoff ends, so clients cannot make the service hammer the Git
 *   server. The remote answering 404 means the application has no repository: 404
 *   `app_not_found`, asked again after one to two minutes ({@link NOT_FOUND_RETRY_MS}).
 * - A folder left by an earlier run (`<dataDir>/mirrors/<name>.apps/<app>.git`) is checked
 *   and served at first use while it syncs; at start-up, folders beyond `maxMirrors` are
 *   removed (oldest first).
 */
import { lstat, readdir, rm, stat, unlink } from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { DocumentParser } from '../../config/app-config.js';
import { CFG_ERR_APP_NOT_FOUND, CFG_ERR_REPO_UNAVAILABLE, withRetryAfter } from '../../errors.js';
import { expandTemplate } from '../../git/app-patterns.js';
import type { GitSettings, RepositorySettings } from '../../settings/schema.js';
import { createGitStore, type GitStore } from './git-store.js';

/** How long the first request for an application waits for its repository's clone, ms. */
export const FIRST_USE_WAIT_MS = 10_000;
/** How long a per-application repository the remote answered 404 for is remembered as missing, ms (at most `git.retryMaxMs`). */
export const NOT_FOUND_RETRY_MS = 120_000;
/** Default `maxMirrors`. */
export const DEFAULT_MAX_MIRRORS = 100;
/** Default `evictAfterIdleMs` (24 h). */
export const DEFAULT_EVICT_AFTER_IDLE_MS = 86_400_000;
/** Read-cache size of one per-application repository (trees, parsed documents). */
const CACHE_ENTRIES = 2_000;

interface Live {
  readonly store: GitStore;
  lastUsed: number;
}

interface Failure {
  readonly error: Error & { remoteStatus?: number };
  readonly failures: number;
  readonly until: number;
}

/** Options of {@link TemplateMirrors}. */
export interface TemplateMirrorsOptions {
  readonly entry: RepositorySettings;
  readonly dataDir: string;
  readonly git: GitSettings;
  readonly logger: FastifyBaseLogger;
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** The document parser of every reader (`DocumentParserPool.parse`); default inline. */
  readonly parse?: DocumentParser | undefined;
}

/** The live per-application mirrors of the template entry. */
export class TemplateMirrors {
  readonly name: string;
  readonly maxMirrors: number;
  readonly evictAfterIdleMs: number;
  /** `<dataDir>/mirrors/<name>.apps`. */
  readonly folder: string;
  readonly #o: TemplateMirrorsOptions;
  readonly #live = new Map<string, Live>();
  readonly #creating = new Map<string, Promise<GitStore>>();
  readonly #failed = new Map<string, Failure>();
  #timer: NodeJS.Timeout | null = null;
  #evictions = 0;
  #closed = false;

  constructor(options: TemplateMirrorsOptions) {
    this.#o = options;
    this.name = options.entry.name;
    this.maxMirrors = options.entry.maxMirrors ?? DEFAULT_MAX_MIRRORS;
    this.evictAfterIdleMs = options.entry.evictAfterIdleMs ?? DEFAULT_EVICT_AFTER_IDLE_MS;
    this.folder = nodePath.join(options.dataDir, 'mirrors', `${options.entry.name}.apps`);
  }

  /** Mirrors removed (ceiling or idle) since start. */
  get evictions(): number {
    return this.#evictions;
  }

  /** The live stores, most recently read last. */
  stores(): GitStore[] {
    return [...this.#live.values()].map((l) => l.store);
  }

  /** The live store of `app`, without creating one (webhooks, admin sync). */
  peek(app: string): GitStore | undefined {
    return this.#live.get(app)?.store;
  }

  /** Removes folders beyond `maxMirrors` left by earlier runs, then checks for idle mirrors every minute. */
  async start(): Promise<void> {
    const st = await lstat(this.folder).catch(() => null);
    if (st !== null && st.isDirectory()) {
      const entries = (await readdir(this.folder)).filter((n) => n.endsWith('.git'));
      if (entries.length > this.maxMirrors) {
        const aged = await Promise.all(entries.map(async (n) => ({ n, t: (await stat(nodePath.join(this.folder, n)).catch(() => null))?.mtimeMs ?? 0 })));
        aged.sort((a, b) => b.t - a.t);
        for (const { n } of aged.slice(this.maxMirrors)) await this.#remove(nodePath.join(this.folder, n));
      }
    }
    if (this.evictAfterIdleMs > 0) {
      this.#timer = setInterval(() => void this.#evictIdle(), Math.min(60_000, this.evictAfterIdleMs));
      this.#timer.unref();
    }
  }

  /** Stops every mirror. */
  async stop(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    await Promise.all([...this.#creating.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.#live.values()].map((l) => l.store.stop()));
  }

  /**
   * The store of `app`'s repository, cloning it first when needed.
   * @throws CFG_ERR_APP_NOT_FOUND (404) when the template URL answers 404 for it
   * @throws CFG_ERR_REPO_UNAVAILABLE / CFG_ERR_REPO_AUTH_FAILED (503, `Retry-After`) while
   *   its clone runs or after it failed
   */
  async get(app: string): Promise<GitStore> {
    const live = this.#live.get(app);
    if (live !== undefined) {
      live.lastUsed = Date.now();
      this.#live.delete(app);
      this.#live.set(app, live); // most recently used last
      return live.store;
    }
    const failed = this.#failed.get(app);
    if (failed !== undefined && Date.now() < failed.until) throw this.#failure(app, failed);
    let creating = this.#creating.get(app);
    if (creating === undefined) {
      if (this.#creating.size >= this.maxMirrors) {
        throw withRetryAfter(new CFG_ERR_REPO_UNAVAILABLE(`${this.name}/${app}`, 'too many first clones are running'), 5);
      }
      creating = this.#create(app);
      this.#creating.set(app, creating);
      const mine = creating;
      mine.then(
        () => this.#creating.delete(app),
        () => this.#creating.delete(app),
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), FIRST_USE_WAIT_MS);
      timer.unref();
    });
    try {
      const store = await Promise.race([creating, wait]);
      if (store === null) throw withRetryAfter(new CFG_ERR_REPO_UNAVAILABLE(`${this.name}/${app}`, 'no mirror yet; the first sync is running'), 2);
      return store;
    } finally {
      clearTimeout(timer);
    }
  }

  #failure(app: string, f: Failure): Error {
    if (f.error.remoteStatus === 404) return new CFG_ERR_APP_NOT_FOUND(app);
    const retry = Math.max(1, Math.ceil((f.until - Date.now()) / 1000));
    return withRetryAfter(f.error, retry);
  }

  async #create(app: string): Promise<GitStore> {
    const gitdir = nodePath.join(this.folder, `${app}.git`);
    const name = `${this.name}/${app}`;
    const store = await createGitStore(this.#o.entry, {
      dataDir: this.#o.dataDir,
      git: this.#o.git,
      logger: this.#o.logger,
      env: this.#o.env,
      parse: this.#o.parse,
      instance: { name, url: expandTemplate(this.#o.entry.url as string, app), gitdir, cacheEntries: CACHE_ENTRIES },
    });
    const mirror = store.mirror!;
    await mirror.open();
    if (mirror.ready) {
      // Left by an earlier run and checked: serve it while it syncs.
      await this.#admit(app, store);
      mirror.sync().catch(() => undefined);
      mirror.start();
      return store;
    }
    try {
      await mirror.sync();
    } catch (err) {
      await store.stop();
      await this.#remove(gitdir);
      const previous = this.#failed.get(app)?.failures ?? 0;
      const failures = previous + 1;
      const error = err as Failure['error'];
      // No repository (404) is no passing failure: asked again at most once a minute.
      const base = Math.min(this.#o.git.retryMaxMs, error.remoteStatus === 404 ? NOT_FOUND_RETRY_MS : this.#o.git.retryMinMs * 2 ** Math.min(failures - 1, 30));
      const f: Failure = { error, failures, until: Date.now() + Math.round(base / 2 + Math.random() * (base / 2)) };
      this.#failed.delete(app);
      this.#failed.set(app, f);
      // One entry per name, bounded like the mirrors themselves.
      while (this.#failed.size > Math.max(100, this.maxMirrors * 4)) this.#failed.delete(this.#failed.keys().next().value as string);
      throw this.#failure(app, f);
    }
    this.#failed.delete(app);
    await this.#admit(app, store);
    mirror.start();
    return store;
  }

  async #admit(app: string, store: GitStore): Promise<void> {
    if (this.#closed) {
      await store.stop();
      return;
    }
    while (this.#live.size >= this.maxMirrors) {
      const [oldest] = this.#live.keys();
      await this.#evict(oldest as string, 'the ceiling of maxMirrors was reached');
    }
    this.#live.set(app, { store, lastUsed: Date.now() });
  }

  async #evictIdle(): Promise<void> {
    const now = Date.now();
    for (const [app, l] of [...this.#live]) {
      if (now - l.lastUsed >= this.evictAfterIdleMs) await this.#evict(app, `not read for evictAfterIdleMs (${this.evictAfterIdleMs} ms)`);
    }
  }

  async #evict(app: string, why: string): Promise<void> {
    const l = this.#live.get(app);
    if (l === undefined) return;
    this.#live.delete(app);
    this.#evictions++;
    await l.store.stop();
    await this.#remove(l.store.mirror!.gitdir);
    this.#o.logger.info({ repo: l.store.name, reason: why }, 'per-application mirror removed');
  }

  /** Removes a folder of ours; a symbolic link is unlinked, never followed. */
  async #remove(path: string): Promise<void> {
    const st = await lstat(path).catch(() => null);
    if (st === null) return;
    if (!st.isDirectory()) await unlink(path).catch(() => undefined);
    else await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}
