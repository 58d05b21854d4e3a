/**
 * Git state for the management listener (SPEC §4: "sync state and age are in
 * `/health/ready` and metrics"), per repository: the readiness rule and its body, and the
 * Prometheus series. Series exist only for configured repositories and for the
 * per-application repositories mirrored now (at most `maxMirrors`), so names a client
 * sends never add series.
 *
 * Readiness: ready when every static repository can serve (a local path, or a checked
 * mirror on disk; a mirror that cannot reach its remote keeps serving and stays ready) and,
 * with `git.staleAfterMs` > 0, none's last successful sync is older than that. The
 * per-application repositories of a template entry are listed but never make the service
 * not ready: they are cloned on first use.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MirrorState } from './git/mirror.js';
import type { GitStore } from './http/plugins/git-store.js';
import type { RepositoryRegistry } from './http/plugins/repositories.js';
import type { GitSettings } from './settings/schema.js';

/** One repository in `/health/ready`. */
export interface RepositoryHealth {
  /** `repositories[].name`, or `<template>/<app>`. */
  name: string;
  /** `local` (read in place), `mirror` (a static remote), `per-application` (the template's). */
  kind: 'local' | 'mirror' | 'per-application';
  /** Counts for the service's readiness (static repositories only). */
  required: boolean;
  /** Configuration can be served from it. */
  ready: boolean;
  /** `ok`, `cloning`, `repo_unavailable`, `repo_auth_failed`, `mirror_invalid`. */
  state: MirrorState;
  defaultBranch: string;
  /** The default branch's commit served, or `null` (none yet, or the branch is missing). */
  commit: string | null;
  /** When that commit was fetched (kept on disk; `null` for a local repository). */
  commitFetchedAt: string | null;
  /** End of the last successful sync (kept on disk). */
  lastSyncAt: string | null;
  /** Milliseconds since `lastSyncAt`. */
  syncAgeMs: number | null;
  /** True when `git.staleAfterMs` > 0 and `syncAgeMs` exceeds it. */
  stale: boolean;
  lastAttemptAt: string | null;
  lastError: string | null;
  lastErrorCode: string | null;
  /** When the next poll or retry is due. */
  nextAttemptAt: string | null;
  /** The last refusal of the mirror on disk (path and reason), if any. */
  refused: { at: string; path: string; reason: string } | null;
}

/** One template entry in `/health/ready`. */
export interface TemplateHealth {
  name: string;
  mirrors: number;
  maxMirrors: number;
  evictions: number;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

async function healthOf(store: GitStore, kind: RepositoryHealth['kind'], git: GitSettings, now: number): Promise<RepositoryHealth> {
  const base = { name: store.name, kind, required: kind !== 'per-application', defaultBranch: store.repository.defaultBranch };
  const mirror = store.mirror;
  if (mirror === undefined) {
    let commit: string | null = null;
    let lastError: string | null = null;
    let lastErrorCode: string | null = null;
    try {
      commit = (await store.resolve()).commit;
    } catch (err) {
      lastError = (err as Error).message;
      lastErrorCode = (err as { code?: string }).code ?? null;
    }
    return { ...base, ready: true, state: 'ok', commit, commitFetchedAt: null, lastSyncAt: null, syncAgeMs: null, stale: false, lastAttemptAt: null, lastError, lastErrorCode, nextAttemptAt: null, refused: null };
  }
  const s = mirror.status;
  const syncAgeMs = s.lastSyncAt === null ? null : now - s.lastSyncAt.getTime();
  const stale = git.staleAfterMs > 0 && (syncAgeMs === null || syncAgeMs > git.staleAfterMs);
  return {
    ...base,
    ready: s.ready,
    state: s.state,
    commit: s.commit,
    commitFetchedAt: iso(s.commitFetchedAt),
    lastSyncAt: iso(s.lastSyncAt),
    syncAgeMs,
    stale,
    lastAttemptAt: iso(s.lastAttemptAt),
    lastError: s.lastError,
    lastErrorCode: s.lastErrorCode,
    nextAttemptAt: iso(s.nextAttemptAt),
    refused: s.refused === null ? null : { at: s.refused.at.toISOString(), path: s.refused.path, reason: s.refused.reason },
  };
}

/**
 * The Git part of `/health/ready`.
 * @returns `ready` (the rule in the module comment), every repository, every template entry.
 */
export async function gitHealth(registry: RepositoryRegistry, git: GitSettings, now = Date.now()): Promise<{ ready: boolean; repositories: RepositoryHealth[]; templates: TemplateHealth[] }> {
  const repositories: RepositoryHealth[] = [];
  for (const store of registry.statics) repositories.push(await healthOf(store, store.mirror === undefined ? 'local' : 'mirror', git, now));
  const templates: TemplateHealth[] = [];
  const t = registry.template;
  if (t !== undefined) {
    for (const store of t.stores()) repositories.push(await healthOf(store, 'per-application', git, now));
    templates.push({ name: t.name, mirrors: t.stores().length, maxMirrors: t.maxMirrors, evictions: t.evictions });
  }
  const ready = repositories.every((r) => !r.required || (r.ready && !r.stale));
  return { ready, repositories, templates };
}

const STATES: readonly MirrorState[] = ['ok', 'cloning', 'repo_unavailable', 'repo_auth_failed', 'mirror_invalid'];

/**
 * Registers the per-repository Git series, read at scrape time (label `repository`):
 * `config_service_git_ready`, `_syncs_total`, `_sync_failures_total`,
 * `_forced_updates_total`, `_last_sync_timestamp_seconds`, `_last_attempt_timestamp_seconds`,
 * `_commit_fetched_timestamp_seconds`, `_served_commit_age_seconds` (seconds since the
 * served commit was last confirmed by a successful sync), `_state{state}` (1 for the current
 * state), and per template entry (label `template`) `config_service_git_template_mirrors`
 * and `_template_evictions_total`.
 */
export function registerGitMetrics(registry: Registry, repositories: RepositoryRegistry): void {
  const mirrors = (): GitStore[] => repositories.stores().filter((s) => s.mirror !== undefined);
  // A `_total` series is a counter (OpenMetrics): the mirror's own count, read at scrape time.
  const series = (name: string, help: string, read: (store: GitStore) => number | undefined, all = false): void => {
    const values = (): Array<[string, number]> =>
      (all ? repositories.stores() : mirrors()).flatMap((store) => {
        const v = read(store);
        return v === undefined ? [] : [[store.name, v]];
      });
    const common = { name, help, labelNames: ['repository'] as const, registers: [registry] };
    if (name.endsWith('_total')) {
      new Counter({
        ...common,
        collect() {
          this.reset();
          for (const [repository, v] of values()) this.inc({ repository }, v);
        },
      });
      return;
    }
    new Gauge({
      ...common,
      collect() {
        this.reset();
        for (const [repository, v] of values()) this.set({ repository }, v);
      },
    });
  };
  const seconds = (d: Date | null): number | undefined => (d === null ? undefined : d.getTime() / 1000);
  series('config_service_git_ready', '1 when configuration can be served from the repository', (s) => (s.ready() ? 1 : 0), true);
  series('config_service_git_syncs_total', 'Successful syncs of the mirror', (s) => s.mirror?.status.syncs);
  series('config_service_git_sync_failures_total', 'Failed syncs of the mirror', (s) => s.mirror?.status.failures);
  series('config_service_git_forced_updates_total', 'Non-fast-forward ref moves (force-pushes) followed by the mirror', (s) => s.mirror?.status.forcedUpdates);
  series('config_service_git_last_sync_timestamp_seconds', 'Unix time of the last successful sync (kept on disk across restarts)', (s) => seconds(s.mirror?.status.lastSyncAt ?? null));
  series('config_service_git_last_attempt_timestamp_seconds', 'Unix time of the start of the last sync attempt', (s) => seconds(s.mirror?.status.lastAttemptAt ?? null));
  series('config_service_git_commit_fetched_timestamp_seconds', 'Unix time the served commit of the default branch was fetched', (s) => seconds(s.mirror?.status.commitFetchedAt ?? null));
  series('config_service_git_served_commit_age_seconds', 'Seconds since the served commit was last confirmed by a successful sync', (s) => {
    const at = s.mirror?.status.lastSyncAt;
    return at ? (Date.now() - at.getTime()) / 1000 : undefined;
  });
  new Gauge({
    name: 'config_service_git_state',
    help: `1 for the current state of the mirror: ${STATES.join(', ')}`,
    labelNames: ['repository', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const store of mirrors()) {
        const current = store.mirror!.status.state;
        for (const state of STATES) this.set({ repository: store.name, state }, state === current ? 1 : 0);
      }
    },
  });
  const template = repositories.template;
  if (template !== undefined) {
    new Gauge({
      name: 'config_service_git_template_mirrors',
      help: 'Per-application repositories mirrored now',
      labelNames: ['template'] as const,
      registers: [registry],
      collect() {
        this.set({ template: template.name }, template.stores().length);
      },
    });
    new Counter({
      name: 'config_service_git_template_evictions_total',
      help: 'Per-application mirrors removed (maxMirrors reached, or idle for evictAfterIdleMs)',
      labelNames: ['template'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ template: template.name }, template.evictions);
      },
    });
  }
}
