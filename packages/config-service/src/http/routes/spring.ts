/**
 * Spring Cloud Config compatibility (SPEC §5.3): the HTTP resources of Spring Cloud Config
 * Server's `EnvironmentController`, so Spring Boot applications can use this service with
 * their stock config client.
 *
 * - `GET /{app}/{profiles}` and `GET /{app}/{profiles}/{label}` → Spring's "Environment"
 *   JSON (`name`, `profiles`, `label`, `version`, `state`, `propertySources`).
 * - `GET /{app}-{profiles}.{yml|yaml|properties|json}` and
 *   `GET /{label}/{app}-{profiles}.{yml|yaml|properties|json}` → the merged document in
 *   that format, through `AppConfigReader.readRendered` (read, placeholders resolved and
 *   the schema checked unless `?resolvePlaceholders=false`, as Spring does on these forms,
 *   then secrets, then the v1 renderer).
 *
 * Secrets (SPEC §2.5) on both: every `{cipher}` value is decrypted for a caller allowed
 * `secrets:read` on the application and profiles and `"<redacted>"` for anyone else,
 * checked against the binding of the document it is written in; one value that cannot be
 * decrypted fails the request (422). The Environment never resolves placeholders (Spring
 * clients do, against the same sources, so `${db.password}` gets the plaintext the
 * client was allowed); the document forms resolve them as the config route does (a
 * secret inside a longer value: plaintext for `secrets:read`, 422 `secret_reference`
 * for anyone else).
 *
 * Sources of the rules: Spring Cloud Config reference, "Quick Start" (the HTTP resources
 * and the Environment JSON) and "Git Backend" ("if the git branch or tag name contains a
 * slash, then the label in the HTTP URL should instead be specified with the special
 * string `(_)`"); `EnvironmentController` (`labelled`: `label.replace("(_)", "/")`; the
 * `{name}-{profiles}` path patterns).
 *
 * The routes are parametric at the root (`/:a/:b`). find-my-way prefers static segments,
 * so `/v1/...` routes keep working; a request whose first segment is {@link RESERVED_APPS}
 * (`v1`, `health`) never reaches the Spring handlers and gets the ordinary 404 `not_found`.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CFG_ERR_INVALID_REF } from '../../errors.js';
import { formatPropertyName, type NameToken } from '../../config/paths.js';
import { renderJsonValue } from '../../config/render.js';
import { MEDIA_TYPES, type Format, type PropertySource, type PropertyValue, type Scalar, type TreeValue } from '../../config/types.js';
import { isScalar } from '../../config/values.js';
import { applySecretsToSource, secretsStep } from '../../secrets/apply.js';
import { secretsModeFor } from '../secrets-mode.js';
import { requireAccess } from '../plugins/auth.js';
import { assertName, checkRef, parseProfiles } from '../names.js';
import { storeOf } from '../target.js';

/**
 * First path segments that are never an application on the Spring routes: `v1` (this
 * service's own API prefix, so `GET /v1/anything` is never read as app `v1`) and `health`
 * (the management listener's `/health/live`, `/health/ready`).
 */
export const RESERVED_APPS: ReadonlySet<string> = new Set(['v1', 'health']);

/** One property source of a Spring Environment: flattened names → values, in document order. */
export interface SpringPropertySource {
  /** The document path inside the repository (`orders/application-dev.yml`, `application.yml (document #0)`). */
  readonly name: string;
  readonly source: ReadonlyArray<readonly [name: string, value: Scalar]>;
}

/**
 * Spring Cloud Config's "Environment" (`org.springframework.cloud.config.environment.Environment`),
 * fields in the order Spring writes them.
 */
export interface SpringEnvironment {
  /** The application name. */
  readonly name: string;
  /** The profiles asked for, in request order. */
  readonly profiles: readonly string[];
  /** The label asked for (`(_)` already turned into `/`), or the default branch. */
  readonly label: string;
  /** The commit id served. */
  readonly version: string;
  /** Always `null` (Spring's field for backends with a state; Git has none). */
  readonly state: null;
  /** Highest precedence first. */
  readonly propertySources: readonly SpringPropertySource[];
}

/**
 * Translates a Spring label to a ref and validates it: every `(_)` becomes `/` (Spring Cloud
 * Config, "Git Backend": a slash in a label is written `(_)`); a `%2F`-encoded slash was
 * already decoded by the router. Then the git ref-name rules apply (names.ts `checkRef`).
 *
 * @returns the ref (`feature/pay-42`).
 * @throws CFG_ERR_INVALID_REF (400) when the ref breaks git-check-ref-format rules
 *   (`feature(_)..(_)x` → `feature/../x` is refused).
 */
export function springLabel(raw: string): string {
  const ref = raw.replaceAll('(_)', '/');
  // checkRef reads '' as "no ref"; an empty label is a bad ref here, not the default branch.
  if (ref === '') throw new CFG_ERR_INVALID_REF('"" is empty');
  return checkRef(ref) as string;
}

/** A flat-document request: `{app}-{profiles}.{ext}`. */
export interface FlatDocumentRequest {
  readonly app: string;
  /** The comma-separated profile list as written (validated later). */
  readonly profiles: string;
  readonly format: Format;
}

const EXTENSION_FORMATS: Readonly<Record<string, Format>> = { yml: 'yaml', yaml: 'yaml', properties: 'properties', json: 'json' };

/**
 * Splits `{app}-{profiles}.{ext}` the way Spring MVC matches Spring Cloud Config's
 * `/{name}-{profiles}.yml` pattern: each `{var}` is a greedy `(.*)`, so the application
 * name takes everything up to the LAST `-` before the extension and the profiles are the
 * rest (`my-app-dev,eu.yml` → app `my-app`, profiles `dev,eu`). A profile with a `-` can
 * therefore not be asked for in this form (Spring refuses it too: "Properties output not
 * supported for name or profiles containing hyphens"); use `/{app}/{profiles}`.
 *
 * @returns the parts, or `undefined` when the segment is not of that form (no `-`, empty
 *   name or profiles, unknown extension).
 */
export function parseFlatDocument(segment: string): FlatDocumentRequest | undefined {
  const m = /^(.+)-([^-]+)\.(yml|yaml|properties|json)$/.exec(segment);
  if (m === null) return undefined;
  return { app: m[1] as string, profiles: m[2] as string, format: EXTENSION_FORMATS[m[3] as string] as Format };
}

/**
 * Spring's test for the two-segment route: `/{name}/{profiles}` only matches when the
 * profiles segment does not name a document (`(?!.*\b\.(?:ya?ml|properties|json)\b).*`).
 */
const NAMES_DOCUMENT = /\b\.(?:ya?ml|properties|json)\b/;

function flattenInto(tokens: NameToken[], value: TreeValue, out: Array<readonly [string, Scalar]>): void {
  if (isScalar(value)) {
    out.push([formatPropertyName(tokens), value]);
  } else if (Array.isArray(value)) {
    // Spring's YamlProcessor: an empty collection is one entry with the value "".
    if (value.length === 0) out.push([formatPropertyName(tokens), '']);
    value.forEach((item: TreeValue, i: number) => flattenInto([...tokens, { index: i }], item, out));
  } else {
    // A map inside a list: its keys in document order; an empty map contributes nothing
    // (YamlProcessor recurses into it and finds no entry).
    const map = value as { readonly [k: string]: TreeValue };
    for (const k of Object.keys(map)) flattenInto([...tokens, k], map[k] as TreeValue, out);
  }
}

/**
 * The `source` map of one property source, as Spring's `YamlProcessor` flattens a
 * document: names `a.b`, `list[0]`, `list[0].host`, `annotations[app.example.com/x]`
 * (a segment holding `.`, `[` or `]` in brackets); an empty list is `""`; entries in
 * document order. An entry whose value is `null` (an unset, SPEC §2.2) is left out.
 *
 * @returns `[name, value]` pairs, each name once (the first spelling wins). Never throws.
 */
export function flattenSource(source: PropertySource): Array<readonly [string, Scalar]> {
  const out: Array<readonly [string, Scalar]> = [];
  for (const e of source.entries) {
    if (e.value === null) continue;
    flattenInto([...e.path], e.value as PropertyValue as TreeValue, out);
  }
  const seen = new Set<string>();
  return out.filter(([name]) => (seen.has(name) ? false : (seen.add(name), true)));
}

/**
 * Builds the Environment of one read: property sources highest precedence first (the
 * reverse of `AppConfig.sources`, which is lowest first), each named by its document path
 * inside the repository. Never the repository URL: Spring writes `<uri>/<path>`, but a URI
 * may carry credentials (case 15).
 */
export function toSpringEnvironment(input: {
  app: string;
  profiles: readonly string[];
  label: string;
  commit: string;
  sources: readonly PropertySource[];
}): SpringEnvironment {
  return {
    name: input.app,
    profiles: [...input.profiles],
    label: input.label,
    version: input.commit,
    state: null,
    propertySources: [...input.sources].reverse().map((s) => ({ name: s.name, source: flattenSource(s) })),
  };
}

/**
 * The Environment as compact JSON, fields in Spring's order (Jackson writes
 * `name, profiles, label, version, state, propertySources`). Strings are JSON strings,
 * booleans booleans, numbers JSON numbers with their exact digits (a 20-digit integer is
 * not rounded through a double).
 */
export function renderSpringEnvironment(env: SpringEnvironment): string {
  const str = (s: string): string => JSON.stringify(s);
  const sources = env.propertySources.map(
    (ps) => `{"name":${str(ps.name)},"source":{${ps.source.map(([k, v]) => `${str(k)}:${renderJsonValue(v)}`).join(',')}}}`,
  );
  return (
    `{"name":${str(env.name)},"profiles":[${env.profiles.map(str).join(',')}],"label":${str(env.label)},` +
    `"version":${str(env.version)},"state":null,"propertySources":[${sources.join(',')}]}`
  );
}

/** Options of the Spring routes. */
export interface SpringRoutesOptions {
  /** Rendered responses kept in memory, keyed by (commit, app, profiles, label or format). */
  cacheEntries: number;
}

interface Rendered {
  body: Buffer;
  etag: string;
  /** Names of the secret keys in the body (never values), for the audit event. */
  secretKeys: string[];
  /** Ids of the keys that decrypted them, for the audit event. */
  secretKeyIds: string[];
}

type Params1 = { a: string };
type Params2 = { a: string; b: string };
type Params3 = { a: string; b: string; c: string };

/** Registers the Spring Cloud Config routes. */
export default async function springRoutes(app: FastifyInstance, opts: SpringRoutesOptions): Promise<void> {
  const cache = new LRUCache<string, Rendered>({ max: Math.max(1, opts.cacheEntries) });

  const send = (request: FastifyRequest, reply: FastifyReply, commit: string, rendered: Rendered, type: string): FastifyReply => {
    reply.header('config-commit', commit).header('etag', rendered.etag).header('cache-control', 'no-store');
    if (request.headers['if-none-match'] === rendered.etag) return reply.code(304).send();
    return reply.type(type).send(rendered.body);
  };

  const etagOf = (key: string): string => `"${createHash('sha256').update(key).digest('base64url').slice(0, 32)}"`;

  /** `/{app}/{profiles}[/{label}]` → Environment JSON. */
  const environment = async (request: FastifyRequest, reply: FastifyReply, appName: string, rawProfiles: string, rawLabel: string | undefined): Promise<FastifyReply> => {
    const audit = request.audit;
    audit.action = 'spring.environment';
    audit.format = 'json';
    assertName('application', appName);
    audit.app = appName;
    const profiles = parseProfiles(rawProfiles);
    audit.profiles = profiles;
    const ref = rawLabel === undefined ? undefined : springLabel(rawLabel);
    if (ref !== undefined) audit.ref = ref;

    requireAccess(request, 'config:read', appName, profiles);

    const store = await storeOf(request, appName);
    const { commit } = await store.resolve(ref);
    audit.commit = commit;
    const label = ref ?? store.repository.defaultBranch;
    const mode = secretsModeFor(request, appName, profiles);
    const key = `env\0${store.name}\0${commit}\0${appName}\0${profiles.join(',')}\0${label}\0${mode}`;
    let rendered = cache.get(key);
    if (!rendered) {
      const reader = store.reader;
      const config = await reader.read(commit, appName, profiles);
      const names = new Set<string>();
      const ids = new Set<string>();
      // Each source as written: placeholders stay for the client to resolve (a Spring
      // client resolves `${db.password}` against the decrypted source it also gets);
      // every secret is checked against the binding of its own document.
      const sources = config.sources.map((s) => {
        const applied = applySecretsToSource(s, mode, app.secretsKeyring, (document) => reader.bindingOf(appName, document));
        for (const n of applied.secretKeys) names.add(n);
        for (const id of applied.secretKeyIds) ids.add(id);
        return applied.source;
      });
      const env = toSpringEnvironment({ app: appName, profiles, label, commit, sources });
      rendered = { body: Buffer.from(renderSpringEnvironment(env), 'utf8'), etag: etagOf(key), secretKeys: [...names].sort(), secretKeyIds: [...ids].sort() };
      cache.set(key, rendered);
    }
    audit.secretKeys = [...rendered.secretKeys];
    audit.secretKeyIds = [...rendered.secretKeyIds];
    return send(request, reply, commit, rendered, 'application/json');
  };

  /** `[/{label}]/{app}-{profiles}.{ext}` → the merged document. */
  const document = async (request: FastifyRequest, reply: FastifyReply, flat: FlatDocumentRequest, rawLabel: string | undefined): Promise<FastifyReply> => {
    const audit = request.audit;
    audit.action = 'spring.document';
    audit.format = flat.format;
    assertName('application', flat.app);
    audit.app = flat.app;
    const profiles = parseProfiles(flat.profiles);
    audit.profiles = profiles;
    const ref = rawLabel === undefined ? undefined : springLabel(rawLabel);
    if (ref !== undefined) audit.ref = ref;

    requireAccess(request, 'config:read', flat.app, profiles);

    const store = await storeOf(request, flat.app);
    const { commit } = await store.resolve(ref);
    audit.commit = commit;
    // Spring's `resolvePlaceholders` request parameter (default true) on these forms.
    const resolve = (request.query as { resolvePlaceholders?: unknown }).resolvePlaceholders !== 'false';
    const mode = secretsModeFor(request, flat.app, profiles);
    const key = `doc\0${store.name}\0${commit}\0${flat.app}\0${profiles.join(',')}\0${flat.format}\0${resolve}\0${mode}`;
    let rendered = cache.get(key);
    if (!rendered) {
      const { text, secretKeys, secretKeyIds } = await store.reader.readRendered(commit, flat.app, profiles, flat.format, {
        resolve,
        secrets: secretsStep(mode, app.secretsKeyring),
      });
      rendered = { body: Buffer.from(text, 'utf8'), etag: etagOf(key), secretKeys, secretKeyIds };
      cache.set(key, rendered);
    }
    audit.secretKeys = [...rendered.secretKeys];
    audit.secretKeyIds = [...rendered.secretKeyIds];
    return send(request, reply, commit, rendered, MEDIA_TYPES[flat.format]);
  };

  app.get<{ Params: Params1 }>('/:a', async (request, reply) => {
    const flat = parseFlatDocument(request.params.a);
    if (flat === undefined || RESERVED_APPS.has(flat.app)) return reply.callNotFound();
    return document(request, reply, flat, undefined);
  });

  app.get<{ Params: Params2 }>('/:a/:b', async (request, reply) => {
    const { a, b } = request.params;
    if (RESERVED_APPS.has(a)) return reply.callNotFound();
    if (NAMES_DOCUMENT.test(b)) {
      const flat = parseFlatDocument(b);
      if (flat === undefined || RESERVED_APPS.has(flat.app)) return reply.callNotFound();
      return document(request, reply, flat, a);
    }
    return environment(request, reply, a, b, undefined);
  });

  app.get<{ Params: Params3 }>('/:a/:b/:c', async (request, reply) => {
    const { a, b, c } = request.params;
    if (RESERVED_APPS.has(a)) return reply.callNotFound();
    return environment(request, reply, a, b, c);
  });
}
