/**
 * Git store plugin: opens the configured repository (a local path read in place, or a
 * remote mirrored into the data directory and kept fresh by polling) and decorates the
 * app with `gitStore`. One resolved commit per request (SPEC §4).
 */
import { readFileSync } from 'node:fs';
import fp from 'fastify-plugin';
import { LRUCache } from 'lru-cache';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { AppConfigReader, type DocumentParser } from '../../config/app-config.js';
import { CFG_ERR_REPO_AUTH_FAILED, CFG_ERR_REPO_UNAVAILABLE, CFG_ERR_SETTINGS_INVALID } from '../../errors.js';
import { GitMirror } from '../../git/mirror.js';
import { GitRepository, findGitdir } from '../../git/repository.js';
import type { RepositorySettings } from '../../settings/schema.js';

/** The repository a request reads from, and its state. */
export interface GitStore {
  readonly name: string;
  readonly reader: AppConfigReader;
  readonly repository: GitRepository;
  readonly mirror: GitMirror | undefined;
  /** True once configuration can be served: a local repo, or a mirror on disk. */
  ready(): boolean;
  /**
   * Resolves `ref` (default: the configured branch) to one commit id.
   * @throws CFG_ERR_REPO_UNAVAILABLE (503) before the first successful sync
   * @throws CFG_ERR_INVALID_REF (400), CFG_ERR_REF_NOT_FOUND (404)
   */
  resolve(ref?: string): Promise<{ commit: string; ref: string }>;
  /** Reads the credentials, then starts syncing and polling (remote only). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    gitStore: GitStore;
  }
}

function readCredentials(repo: RepositorySettings, env: NodeJS.ProcessEnv): { username?: string; password?: string } | undefined {
  if (!repo.auth) return undefined;
  let password: string | undefined;
  if (repo.auth.passwordFile) {
    try {
      password = readFileSync(repo.auth.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new CFG_ERR_SETTINGS_INVALID(`  repositories.${repo.name}.auth.passwordFile: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else if (repo.auth.passwordEnv) {
    password = env[repo.auth.passwordEnv];
    if (password === undefined) throw new CFG_ERR_SETTINGS_INVALID(`  repositories.${repo.name}.auth.passwordEnv: variable ${repo.auth.passwordEnv} is not set`);
  }
  return { ...(repo.auth.username !== undefined && { username: repo.auth.username }), ...(password !== undefined && { password }) };
}

/**
 * Opens the repository described by `repo`.
 * @param dataDir folder for mirrors
 * @param env environment to read a `passwordEnv` credential from
 * @param parse the document parser (limits, worker threads; `DocumentParserPool.parse`)
 */
export async function createGitStore(repo: RepositorySettings, dataDir: string, logger: FastifyBaseLogger, env: NodeJS.ProcessEnv = process.env, parse?: DocumentParser): Promise<GitStore> {
  const readerOptions = parse === undefined ? {} : { parse };
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
      start: async () => {},
      stop: async () => {},
    };
  }
  const credentials = readCredentials(repo, env);
  const mirror = new GitMirror({
    name: repo.name,
    url: repo.url!,
    dataDir,
    defaultBranch: repo.branch,
    ...(credentials && { credentials }),
    pollIntervalMs: repo.pollIntervalMs,
    logger: logger.child({ repo: repo.name }),
  });
  const reader = new AppConfigReader(mirror.repository, repo.layout, readerOptions);
  return {
    name: repo.name,
    reader,
    repository: mirror.repository,
    mirror,
    ready: () => mirror.ready,
    resolve: async (ref) => {
      if (!mirror.ready) {
        if (mirror.stats.lastErrorCode === 'CFG_ERR_REPO_AUTH_FAILED') throw new CFG_ERR_REPO_AUTH_FAILED(repo.name);
        throw new CFG_ERR_REPO_UNAVAILABLE(repo.name, mirror.stats.failures > 0 ? 'no mirror yet and the last sync failed' : 'no mirror yet; the first sync is running');
      }
      return mirror.repository.resolveRef(ref);
    },
    start: async () => {
      await mirror.sync().catch((err: Error & { code?: string }) => {
        logger.warn({ repo: repo.name, code: err.code, reason: mirror.stats.lastError }, 'initial sync failed; serving from the mirror on disk if there is one');
      });
      mirror.start();
    },
    stop: () => mirror.stop(),
  };
}

async function gitStorePlugin(app: FastifyInstance, opts: { store: GitStore }): Promise<void> {
  app.decorate('gitStore', opts.store);
  app.addHook('onClose', () => opts.store.stop());
}

export default fp(gitStorePlugin, { name: 'git-store', fastify: '5.x' });
