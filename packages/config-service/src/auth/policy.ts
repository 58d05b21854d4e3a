/**
 * Access policy (SPEC §3): who may do what to which application and profiles.
 *
 * The policy lives in the service settings, not in the configuration repository. Everything
 * not allowed by the rules below is denied; the HTTP layer answers 403 and audits the
 * {@link Decision}'s `rule`.
 *
 * ## Certificate principals
 * A request is allowed when either
 * - `defaultOwnApp` is on, the request names an app equal to the principal's subject, and
 *   the scope is `config:read` or `secrets:read` (any profiles) — rule `default:own-app`; or
 * - the grants allow it (below) — rule `grant[i]` (or `grant[i]+grant[j]` when profiles are
 *   covered by different grants).
 * To restrict profiles of the own app, turn `defaultOwnApp` off and grant `apps: ['$self']`
 * with the profiles wanted.
 *
 * ## JWT principals
 * A request is allowed only when the token itself allows it AND, if the policy has any
 * grant whose `kinds` include `'jwt'`, those grants allow it too:
 * - the token's `scope` claim must contain the scope (`token-scope-missing:<scope>`);
 * - for a request naming an app, a glob of the token's `apps` claim must match it
 *   (`token-apps-exclude-app`); a request naming no app covers every app, so `apps` must
 *   contain `*` (`token-apps-not-all-apps`). A missing `apps` claim matches nothing.
 * `defaultOwnApp` never applies to tokens. Rule when allowed: `jwt:claims`, or
 * `jwt:claims+grant[i]` when JWT grants exist.
 *
 * ## Grants
 * A grant applies to a principal whose kind is in `kinds` (default `['certificate']`, so
 * adding a grant never silently restricts tokens) and whose subject matches a glob in
 * `subjects`. For a request with scope `s`, app `a` and profiles `P` it needs `s` in
 * `scopes`, `a` matched by a glob in `apps` (`$self` matches the principal's own subject),
 * and every profile of `P` matched by a glob in `profiles` (default `['*']`); different
 * profiles may be covered by different grants. A request naming no app (e.g. `audit:read`
 * of the whole log, `encrypt`) needs a grant whose `apps` contain `*` itself.
 *
 * Scopes are independent: `admin` does not imply the others.
 *
 * Globs: `*` matches any run of characters (also `/` and `.`), `?` one character, anything
 * else itself; a glob must match the whole text. (`node:path`'s `matchesGlob` is not used:
 * it is experimental in Node 20 and treats `/` specially.)
 */
import { CFG_ERR_SETTINGS_INVALID, withData } from '../errors.js';

/** Every scope, in the order SPEC §3 lists them. */
export const SCOPES = Object.freeze(['config:read', 'secrets:read', 'audit:read', 'encrypt', 'admin'] as const);

/** A permission. `config:read`/`secrets:read` are per app and profile; the others may name no app. */
export type Scope = (typeof SCOPES)[number];

/** Principal kinds. */
export type PrincipalKind = 'certificate' | 'jwt';

/** A rule granting scopes on apps (and profiles) to subjects. */
export interface Grant {
  /** Globs over the principal's subject (`*` = everyone). */
  subjects: string[];
  /** Principal kinds the grant applies to. Default `['certificate']`. */
  kinds?: PrincipalKind[];
  /** Globs over app names; `$self` = the principal's own subject. */
  apps: string[];
  /** Globs over profile names. Default `['*']`. */
  profiles?: string[];
  /** Scopes granted. */
  scopes: Scope[];
}

/** The `policy` section of the service settings. */
export interface PolicySettings {
  /** A certificate identity may `config:read` and `secrets:read` its own app, all profiles. Default true. */
  defaultOwnApp: boolean;
  /** Extra grants, evaluated in order; their index appears in decisions as `grant[i]`. */
  grants: Grant[];
}

/** Default policy: own app only, no grants. */
export const DEFAULT_POLICY: Readonly<PolicySettings> = Object.freeze({ defaultOwnApp: true, grants: [] });

/** The caller, as far as policy is concerned. */
export interface Principal {
  kind: PrincipalKind;
  /** The app name of a certificate, the `sub` of a JWT. */
  subject: string;
  /** JWT only: scopes of the `scope` claim. */
  scopes?: readonly Scope[];
  /** JWT only: app globs of the `apps` claim. */
  apps?: readonly string[];
}

/** What is asked. */
export interface AccessRequest {
  scope: Scope;
  /** The application, when the request concerns one. */
  app?: string;
  /** Profiles asked for; every one must be allowed. Empty or missing = no profile check. */
  profiles?: readonly string[];
}

/** The outcome of {@link authorize}. */
export interface Decision {
  allowed: boolean;
  /**
   * Which rule allowed (`default:own-app`, `grant[2]`, `grant[0]+grant[2]`, `jwt:claims`,
   * `jwt:claims+grant[1]`) or why not (`no-grant-for-app`, `no-grant-for-scope:<scope>`,
   * `profile-not-granted:<profile>`, `token-scope-missing:<scope>`,
   * `token-apps-exclude-app`, `token-apps-not-all-apps`). Names no other grant, app or
   * subject, so it is safe to show the caller and to audit.
   */
  rule: string;
}

/**
 * Whether `text` matches `glob` as a whole: `*` = any run of characters (including none),
 * `?` = exactly one character (code point), everything else literal. Linear-time
 * backtracking, no regular expressions, so no escaping issues.
 */
export function matchesGlob(glob: string, text: string): boolean {
  const p = Array.from(glob);
  const t = Array.from(text);
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    const pc = p[pi];
    if (pc !== undefined && pc !== '*' && (pc === '?' || pc === t[ti])) {
      pi++;
      ti++;
    } else if (pc === '*') {
      star = pi++;
      mark = ti;
    } else if (star !== -1) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/** An app glob of a grant or token; `$self` stands for the principal's subject. */
function appMatches(glob: string, app: string, subject: string): boolean {
  return glob === '$self' ? app === subject : matchesGlob(glob, app);
}

/** Whether a list of app globs covers the request: the app, or every app when none is named. */
function appsCover(globs: readonly string[], app: string | undefined, subject: string): boolean {
  return app === undefined ? globs.includes('*') : globs.some((g) => appMatches(g, app, subject));
}

const OWN_APP_SCOPES: ReadonlySet<Scope> = new Set<Scope>(['config:read', 'secrets:read']);

/** Evaluates the grants applying to `principal` (with their policy indices). */
function byGrants(grants: ReadonlyArray<{ grant: Grant; index: number }>, principal: Principal, request: AccessRequest): Decision {
  const { scope, app } = request;
  const profiles = request.profiles ?? [];
  const candidates = grants.filter(
    ({ grant }) =>
      grant.scopes.includes(scope) &&
      grant.subjects.some((g) => matchesGlob(g, principal.subject)) &&
      appsCover(grant.apps, app, principal.subject),
  );
  if (candidates.length === 0) {
    return { allowed: false, rule: app === undefined ? `no-grant-for-scope:${scope}` : 'no-grant-for-app' };
  }
  const allows = (grant: Grant, profile: string): boolean => (grant.profiles ?? ['*']).some((g) => matchesGlob(g, profile));
  const whole = candidates.find(({ grant }) => profiles.every((p) => allows(grant, p)));
  if (whole) return { allowed: true, rule: `grant[${whole.index}]` };
  const used = new Set<number>();
  for (const profile of profiles) {
    const hit = candidates.find(({ grant }) => allows(grant, profile));
    if (!hit) return { allowed: false, rule: `profile-not-granted:${profile}` };
    used.add(hit.index);
  }
  return { allowed: true, rule: [...used].sort((a, b) => a - b).map((i) => `grant[${i}]`).join('+') };
}

function grantsFor(policy: PolicySettings, kind: PrincipalKind): Array<{ grant: Grant; index: number }> {
  return policy.grants
    .map((grant, index) => ({ grant, index }))
    .filter(({ grant }) => (grant.kinds ?? ['certificate']).includes(kind));
}

/**
 * Decides one request (SPEC §3; the rules are in this module's header).
 *
 * @param policy - the policy settings.
 * @param principal - the authenticated caller.
 * @param request - scope, app (when the request concerns one) and profiles.
 * @returns whether it is allowed and the rule that decided. Never throws.
 */
export function authorize(policy: PolicySettings, principal: Principal, request: AccessRequest): Decision {
  if (principal.kind === 'certificate') {
    if (policy.defaultOwnApp && request.app !== undefined && request.app === principal.subject && OWN_APP_SCOPES.has(request.scope)) {
      return { allowed: true, rule: 'default:own-app' };
    }
    return byGrants(grantsFor(policy, 'certificate'), principal, request);
  }

  if (!(principal.scopes ?? []).includes(request.scope)) {
    return { allowed: false, rule: `token-scope-missing:${request.scope}` };
  }
  if (!appsCover(principal.apps ?? [], request.app, principal.subject)) {
    return { allowed: false, rule: request.app === undefined ? 'token-apps-not-all-apps' : 'token-apps-exclude-app' };
  }
  const jwtGrants = grantsFor(policy, 'jwt');
  if (jwtGrants.length === 0) return { allowed: true, rule: 'jwt:claims' };
  const byGrant = byGrants(jwtGrants, principal, request);
  return byGrant.allowed ? { allowed: true, rule: `jwt:claims+${byGrant.rule}` } : byGrant;
}

/**
 * Whether the principal may hold `scope` for at least one application (a grant or token
 * with that scope and any app at all). For a gate that must decide before the request
 * names its app (`POST /v1/encrypt` reads the app from the body); the real check with the
 * app follows through {@link authorize}.
 *
 * @returns `allowed` true when some application could be allowed; otherwise the decision
 *   {@link authorize} gives for the scope without an app (its `rule` says why). Never throws.
 */
export function mayHoldScope(policy: PolicySettings, principal: Principal, scope: Scope): Decision {
  const all = authorize(policy, principal, { scope });
  if (all.allowed) return all;
  const applies = (grant: Grant): boolean => grant.scopes.includes(scope) && grant.apps.length > 0 && grant.subjects.some((g) => matchesGlob(g, principal.subject));
  if (principal.kind === 'certificate') {
    return grantsFor(policy, 'certificate').some(({ grant }) => applies(grant)) ? { allowed: true, rule: 'some-app' } : all;
  }
  if (!(principal.scopes ?? []).includes(scope) || (principal.apps ?? []).length === 0) return all;
  const jwtGrants = grantsFor(policy, 'jwt');
  if (jwtGrants.length > 0 && !jwtGrants.some(({ grant }) => applies(grant))) return all;
  return { allowed: true, rule: 'some-app' };
}

/**
 * The apps of `apps` the principal may read with `scope` (default `config:read`), in the
 * given order. Profile restrictions are not considered here; each actual read is still
 * checked with {@link authorize}.
 */
export function readableApps(policy: PolicySettings, principal: Principal, apps: readonly string[], scope: Scope = 'config:read'): string[] {
  return apps.filter((app) => authorize(policy, principal, { scope, app }).allowed);
}

/**
 * Checks policy settings that did not come through a schema (or as a second line after
 * one): known scopes and kinds, non-empty string lists, `$self` only in `apps`.
 *
 * @param settingPrefix - settings path of the policy for messages. Default `'policy'`.
 * @throws CFG_ERR_SETTINGS_INVALID naming the first bad setting, e.g.
 *   `policy.grants[1].scopes[0]: unknown scope 'read'`; `data.setting` holds the path.
 */
export function checkPolicySettings(policy: PolicySettings, settingPrefix = 'policy'): void {
  const fail = (setting: string, problem: string): never => {
    throw withData(new CFG_ERR_SETTINGS_INVALID(`${setting}: ${problem}`), { setting });
  };
  if (typeof policy.defaultOwnApp !== 'boolean') fail(`${settingPrefix}.defaultOwnApp`, 'must be true or false');
  if (!Array.isArray(policy.grants)) fail(`${settingPrefix}.grants`, 'must be a list');
  const known = new Set<string>(SCOPES);
  policy.grants.forEach((grant, i) => {
    const at = `${settingPrefix}.grants[${i}]`;
    const strings = (key: 'subjects' | 'apps' | 'profiles', required: boolean): void => {
      const list: unknown = grant[key];
      if (list === undefined && !required) return;
      if (!Array.isArray(list) || list.length === 0) fail(`${at}.${key}`, 'must be a non-empty list of globs');
      (list as unknown[]).forEach((g, j) => {
        if (typeof g !== 'string' || g.length === 0) fail(`${at}.${key}[${j}]`, 'must be a non-empty string');
        if (g === '$self' && key !== 'apps') fail(`${at}.${key}[${j}]`, "'$self' is only meaningful in apps");
      });
    };
    strings('subjects', true);
    strings('apps', true);
    strings('profiles', false);
    if (!Array.isArray(grant.scopes) || grant.scopes.length === 0) fail(`${at}.scopes`, 'must be a non-empty list of scopes');
    grant.scopes.forEach((s, j) => {
      if (!known.has(s)) fail(`${at}.scopes[${j}]`, `unknown scope '${String(s)}' (one of ${SCOPES.join(', ')})`);
    });
    if (grant.kinds !== undefined) {
      if (!Array.isArray(grant.kinds) || grant.kinds.length === 0) fail(`${at}.kinds`, "must be a non-empty list of 'certificate', 'jwt'");
      grant.kinds.forEach((k, j) => {
        if (k !== 'certificate' && k !== 'jwt') fail(`${at}.kinds[${j}]`, `unknown kind '${String(k)}' (certificate or jwt)`);
      });
    }
  });
}
