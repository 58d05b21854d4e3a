/**
 * Which repository a push webhook or an admin sync is for (SPEC §4, several repositories).
 *
 * A webhook names its repository by, in order:
 * 1. the `?repo=<name>` query parameter of the webhook URL (`<template>/<app>` for a
 *    per-application repository);
 * 2. the repository URL in the payload: GitHub and Gitea `repository.clone_url`,
 *    `repository.html_url`, `repository.url`; GitLab `project.git_http_url`,
 *    `project.web_url`, `repository.git_http_url`, `repository.homepage` (GitHub, Gitea and
 *    GitLab webhook docs, "push" payloads), compared without credentials, `.git`, a trailing
 *    `/` or case (`app-patterns.ts` `normalizeRemoteUrl`). A GitHub form-encoded delivery
 *    carries the JSON in its `payload` field;
 * 3. the only repository, when exactly one static entry is configured.
 * The payload is read only to find these URLs; the signature is checked afterwards with the
 * secret of the repository found.
 */
import type { FastifyRequest } from 'fastify';
import { CFG_ERR_INVALID_REQUEST, CFG_ERR_REPO_NOT_FOUND } from '../../errors.js';
import type { GitStore } from '../plugins/git-store.js';
import type { RepositoryEntry, RepositoryRegistry } from '../plugins/repositories.js';

/** What a webhook or admin sync acts on. */
export interface SyncTarget {
  /** `repositories[].name`, or `<template>/<app>`. */
  readonly name: string;
  /** The entry (its secret file, its kind). */
  readonly entry: RepositoryEntry;
  /** The live store, or `undefined` for a per-application repository not mirrored now. */
  readonly store: GitStore | undefined;
}

const REPO_PARAM = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?(\/[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?)?$/;

/** The `?repo=` parameter, validated; `undefined` when absent. @throws CFG_ERR_INVALID_REQUEST (400) */
export function repoParam(request: FastifyRequest): string | undefined {
  const raw = (request.query as Record<string, unknown> | undefined)?.repo;
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !REPO_PARAM.test(raw)) throw new CFG_ERR_INVALID_REQUEST("query parameter 'repo' must be a repository name (or <template>/<app>)");
  return raw;
}

/**
 * The repository named `name`.
 * @throws CFG_ERR_REPO_NOT_FOUND (404) when no entry has that name
 * @throws CFG_ERR_INVALID_REQUEST (400) for a template entry named without an application
 */
export function namedTarget(registry: RepositoryRegistry, name: string): SyncTarget {
  const slash = name.indexOf('/');
  const entry = registry.entryByName(slash === -1 ? name : name.slice(0, slash));
  if (entry === undefined || (slash !== -1 && entry.template === undefined)) throw new CFG_ERR_REPO_NOT_FOUND(name);
  if (entry.template !== undefined && slash === -1) throw new CFG_ERR_INVALID_REQUEST(`'${name}' holds one repository per application: name one, ${name}/<app>`);
  return { name, entry, store: registry.byName(name) };
}

function stringsAt(value: unknown, paths: ReadonlyArray<readonly string[]>): string[] {
  const out: string[] = [];
  for (const path of paths) {
    let v: unknown = value;
    for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    if (typeof v === 'string' && v.length <= 2048) out.push(v);
  }
  return out;
}

/** The repository URLs a push payload names (see the module comment); `[]` when it is not JSON. */
export function payloadRemoteUrls(body: Buffer, contentType: string | undefined): string[] {
  let text = body.toString('utf8');
  if (contentType?.startsWith('application/x-www-form-urlencoded')) text = new URLSearchParams(text).get('payload') ?? '';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return [];
  }
  return stringsAt(json, [
    ['repository', 'clone_url'],
    ['repository', 'html_url'],
    ['repository', 'git_http_url'],
    ['repository', 'url'],
    ['repository', 'homepage'],
    ['project', 'git_http_url'],
    ['project', 'http_url'],
    ['project', 'web_url'],
  ]);
}

/**
 * The repository a webhook delivery is for.
 * @throws CFG_ERR_REPO_NOT_FOUND (404) for an unknown `?repo=`
 * @throws CFG_ERR_INVALID_REQUEST (400) when nothing names a configured repository
 */
export function webhookTarget(registry: RepositoryRegistry, request: FastifyRequest, body: Buffer): SyncTarget {
  const named = repoParam(request);
  if (named !== undefined) return namedTarget(registry, named);
  for (const url of payloadRemoteUrls(body, request.headers['content-type'])) {
    const hit = registry.byRemoteUrl(url);
    if (hit === undefined) continue;
    const name = hit.app === undefined ? hit.entry.name : `${hit.entry.name}/${hit.app}`;
    return { name, entry: hit.entry, store: registry.byName(name) };
  }
  const only = registry.single;
  if (only !== undefined) return { name: only.name, entry: registry.entries[0] as RepositoryEntry, store: only };
  throw new CFG_ERR_INVALID_REQUEST(
    `the payload names no configured repository URL; add ?repo=<name> to the webhook URL (one of: ${registry.entries.map((e) => (e.template ? `${e.name}/<app>` : e.name)).join(', ')})`,
  );
}

/**
 * The repository `POST /v1/admin/sync` syncs: `?repo=`, or the only one.
 * @throws CFG_ERR_REPO_NOT_FOUND (404), CFG_ERR_INVALID_REQUEST (400)
 */
export function adminSyncTarget(registry: RepositoryRegistry, request: FastifyRequest): SyncTarget {
  const named = repoParam(request);
  if (named !== undefined) {
    const target = namedTarget(registry, named);
    if (target.store === undefined) throw new CFG_ERR_REPO_NOT_FOUND(named);
    return target;
  }
  const only = registry.single;
  if (only !== undefined) return { name: only.name, entry: registry.entries[0] as RepositoryEntry, store: only };
  throw new CFG_ERR_INVALID_REQUEST(`several repositories are configured: name one with ?repo= (one of: ${registry.entries.map((e) => (e.template ? `${e.name}/<app>` : e.name)).join(', ')})`);
}
