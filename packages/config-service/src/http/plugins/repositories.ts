/**
 * Several repositories (SPEC §4): which repository serves which application, and the
 * Fastify plugin that decorates the app with the {@link RepositoryRegistry}.
 *
 * An application is served from exactly one repository: the first `repositories[]` entry
 * whose `apps` globs match its name (settings refuse two entries that claim one
 * application, so the order only matters as a tie-break that never happens). An error in
 * that repository is the answer: nothing falls through to another entry. An application no
 * entry matches is 404 `app_not_found` before any Git access, so names a client makes up
 * create no mirror, no metric series and no cache entry.
 */
import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { CFG_ERR_APP_NOT_FOUND } from '../../errors.js';
import { ALL_APPS, appFromTemplateUrl, isTemplateUrl, matchesAny, normalizeRemoteUrl } from '../../git/app-patterns.js';
import type { DocumentParser } from '../../config/app-config.js';
import { splitCredentials } from '../../git/credentials.js';
import type { Settings } from '../../settings/schema.js';
import { createGitStore, type GitStore, type MirrorFollower } from './git-store.js';
import { TemplateMirrors } from './template-mirrors.js';

/** One `repositories[]` entry, opened. */
export interface RepositoryEntry {
  readonly name: string;
  /** Its `apps` globs (`['*']` when not set). */
  readonly apps: readonly string[];
  /** The remote URL without credentials (a template keeps `{app}`); absent for a local path. */
  readonly url?: string | undefined;
  /** `repositories[].webhookSecretFile`, when set. */
  readonly webhookSecretFile?: string | undefined;
  /** The store of a static entry. */
  readonly store?: GitStore | undefined;
  /** The per-application mirrors of the template entry. */
  readonly template?: TemplateMirrors | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    repositories: RepositoryRegistry;
  }
}

/** Maps applications to repositories. */
export class RepositoryRegistry {
  readonly entries: readonly RepositoryEntry[];

  /** @param entries - in settings order; tests may pass stores of their own. */
  constructor(entries: readonly RepositoryEntry[]) {
    this.entries = entries;
  }

  /**
   * Opens every entry of the settings (no network I/O: {@link start} syncs).
   * @param parse - the document parser every reader uses (`DocumentParserPool.parse`); default inline
   * @param follower - in a worker of `server.workers`: remote mirrors are read as the
   *   primary publishes them, never fetched here (see `createGitStore`)
   * @throws CFG_ERR_SETTINGS_INVALID (credentials), CFG_ERR_REPO_UNAVAILABLE (a local path
   *   that is not a Git repository)
   */
  static async open(settings: Readonly<Settings>, logger: FastifyBaseLogger, env?: NodeJS.ProcessEnv, parse?: DocumentParser, follower?: MirrorFollower): Promise<RepositoryRegistry> {
    const entries: RepositoryEntry[] = [];
    for (const repo of settings.repositories) {
      const common = {
        name: repo.name,
        apps: repo.apps ?? ALL_APPS,
        url: repo.url === undefined ? undefined : splitCredentials(repo.url).url,
        webhookSecretFile: repo.webhookSecretFile,
      };
      if (repo.url !== undefined && isTemplateUrl(repo.url)) {
        entries.push({ ...common, template: new TemplateMirrors({ entry: repo, dataDir: settings.dataDir, git: settings.git, logger, env, parse }) });
      } else {
        entries.push({ ...common, store: await createGitStore(repo, { dataDir: settings.dataDir, git: settings.git, logger, env, parse, follower }) });
      }
    }
    return new RepositoryRegistry(entries);
  }

  /** The entry that holds `app`: the first whose globs match, or `undefined`. */
  entryFor(app: string): RepositoryEntry | undefined {
    return this.entries.find((e) => matchesAny(e.apps, app));
  }

  /**
   * The store `app` is read from; a per-application repository is cloned on first use.
   * @throws CFG_ERR_APP_NOT_FOUND (404) when no entry claims `app` (nothing is created)
   * @throws what {@link TemplateMirrors.get} throws for the template entry
   */
  async storeFor(app: string): Promise<GitStore> {
    const entry = this.entryFor(app);
    if (entry === undefined) throw new CFG_ERR_APP_NOT_FOUND(app);
    if (entry.store !== undefined) return entry.store;
    return (entry.template as TemplateMirrors).get(app);
  }

  /** The stores of the static entries, in settings order. */
  get statics(): GitStore[] {
    return this.entries.flatMap((e) => (e.store === undefined ? [] : [e.store]));
  }

  /** The template entry's mirrors, when there is one. */
  get template(): TemplateMirrors | undefined {
    return this.entries.find((e) => e.template !== undefined)?.template;
  }

  /** The one repository when exactly one static entry and no template are configured. */
  get single(): GitStore | undefined {
    return this.entries.length === 1 ? this.entries[0]?.store : undefined;
  }

  /** Static stores, then the live per-application ones. */
  stores(): GitStore[] {
    return [...this.statics, ...(this.template?.stores() ?? [])];
  }

  /** The entry named `name` (`repositories[].name`). */
  entryByName(name: string): RepositoryEntry | undefined {
    return this.entries.find((e) => e.name === name);
  }

  /**
   * The live store named `name`: a static entry's, or `<template>/<app>` when that
   * application's repository is mirrored now (never created here).
   */
  byName(name: string): GitStore | undefined {
    const slash = name.indexOf('/');
    if (slash === -1) return this.entryByName(name)?.store;
    const entry = this.entryByName(name.slice(0, slash));
    return entry?.template?.peek(name.slice(slash + 1));
  }

  /**
   * The repository a remote URL (from a webhook payload) designates: a static entry with
   * that URL, or the template entry and the application its URL names.
   */
  byRemoteUrl(url: string): { entry: RepositoryEntry; app?: string } | undefined {
    const wanted = normalizeRemoteUrl(url);
    if (wanted === undefined) return undefined;
    for (const entry of this.entries) {
      if (entry.url === undefined) continue;
      if (entry.template === undefined) {
        if (normalizeRemoteUrl(entry.url) === wanted) return { entry };
      } else {
        const app = appFromTemplateUrl(entry.url, url);
        if (app !== undefined && matchesAny(entry.apps, app)) return { entry, app };
      }
    }
    return undefined;
  }

  /** Syncs every static repository once (failures logged), then polls; starts the template's housekeeping. */
  async start(): Promise<void> {
    await Promise.all(this.statics.map((s) => s.start()));
    await this.template?.start();
  }

  /** Stops polling and waits for syncs in flight. */
  async stop(): Promise<void> {
    await Promise.all(this.statics.map((s) => s.stop()));
    await this.template?.stop();
  }
}

async function repositoriesPlugin(app: FastifyInstance, opts: { registry: RepositoryRegistry }): Promise<void> {
  app.decorate('repositories', opts.registry);
  app.addHook('onClose', () => opts.registry.stop());
}

/** Decorates the app with `repositories` and stops them when it closes. */
export default fp(repositoriesPlugin, { name: 'repositories', fastify: '5.x' });
