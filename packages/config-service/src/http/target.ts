/**
 * The common start of every application-scoped read (SPEC §5): validate the names and
 * the ref (400 before any lookup), record them for the audit event, check the policy
 * (403), find the application's repository (404 before any Git access when no
 * `repositories[]` entry claims it, SPEC §4), then resolve the ref to the one commit the
 * whole request reads.
 */
import type { FastifyRequest } from 'fastify';
import type { GitStore } from './plugins/git-store.js';
import { requireAccess } from './plugins/auth.js';
import { assertName, checkRef, parseProfiles } from './names.js';

/** What a request reads: the application, its profiles and the resolved commit. */
export interface ReadTarget {
  app: string;
  profiles: string[];
  /** The ref asked for, if any. */
  ref: string | undefined;
  commit: string;
  /** The application's repository (reader, Git objects, name). */
  store: GitStore;
}

/**
 * Validates `app`, the comma list `profile` and `ref`, fills `request.audit`, requires
 * `config:read` for them and resolves the commit.
 *
 * @param action audit action (`config.read`, `files.list` ...)
 * @param format audit format
 * @param check extra validation run after the names and before the policy (e.g. a file path)
 * @throws CFG_ERR_INVALID_NAME / CFG_ERR_INVALID_REF (400), CFG_ERR_FORBIDDEN (403),
 *   CFG_ERR_APP_NOT_FOUND (404, no repository claims the app), CFG_ERR_REF_NOT_FOUND (404),
 *   CFG_ERR_REPO_UNAVAILABLE / CFG_ERR_REPO_AUTH_FAILED (503, with `Retry-After`)
 */
export async function readTarget(
  request: FastifyRequest,
  input: { action: string; format: string; app: string; profile: string | undefined; ref: string | undefined },
  check?: () => void,
): Promise<ReadTarget> {
  const audit = request.audit;
  audit.action = input.action;
  audit.format = input.format;
  assertName('application', input.app);
  audit.app = input.app;
  const profiles = parseProfiles(input.profile);
  audit.profiles = profiles;
  const ref = checkRef(input.ref);
  if (ref !== undefined) audit.ref = ref;
  check?.();
  requireAccess(request, 'config:read', input.app, profiles);
  const store = await storeOf(request, input.app);
  const { commit } = await store.resolve(ref);
  audit.commit = commit;
  return { app: input.app, profiles, ref, commit, store };
}

/**
 * The repository `app` is served from, recorded in the audit event.
 * @throws CFG_ERR_APP_NOT_FOUND (404) when no entry claims it; 503 while a
 *   per-application repository cannot be cloned
 */
export async function storeOf(request: FastifyRequest, app: string): Promise<GitStore> {
  const entry = request.server.repositories.entryFor(app);
  if (entry !== undefined) request.audit.repository = entry.template === undefined ? entry.name : `${entry.name}/${app}`;
  const store = await request.server.repositories.storeFor(app);
  request.audit.repository = store.name;
  return store;
}
