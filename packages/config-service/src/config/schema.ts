/**
 * Application schemas (SPEC §2.4): an application may keep a JSON Schema; its merged
 * configuration (after placeholders) is validated against it before it is served.
 *
 * Where the schema lives: `<app>/schema.json` in the `folders` layout, `<app>.schema.json`
 * at the repository root in the `spring` layout (read by `AppConfigReader.readSchema`).
 *
 * Validation runs on the nested tree that the `json` format serves ({@link toTree}),
 * numbers as JSON numbers (integers beyond 2^53 lose digits for the check only; the
 * served value keeps them). Dialects: draft-07 (the default, and for any other or absent
 * `$schema`), 2019-09 and 2020-12, chosen by `$schema`. Ajv runs with `allErrors: true`
 * (the service reports the first violation, `validate` every one), `strict: false` (unknown keywords are ignored) and
 * without format validation. Compiled schemas are cached by the schema blob's id.
 */
import type { ErrorObject } from 'ajv';
import { CFG_ERR_SCHEMA_INVALID, CFG_ERR_SCHEMA_VIOLATION, withData } from '../errors.js';
import { decodeDocument } from './parse.js';
import { coercePropertiesValues } from './coerce.js';
import { compile, schemaInstance, type AppSchema } from './schema-compile.js';
import { resolvePlaceholdersWithSecrets, type PlaceholderSecrets, type ResolvedPlaceholders } from './placeholders.js';
import type { MergedConfig, Origin, TreeValue } from './types.js';
import { isNumberLiteral } from './values.js';


/** The first violation found. Never holds a configuration value. */
export interface SchemaViolation {
  /** Key path, dotted, list indices as `[n]` (`servers[0].port`); `''` for the root. */
  readonly key: string;
  /** The rule broken, as Ajv words it (`must be integer`, `must have required property 'port'`). */
  readonly rule: string;
  /** The JSON Schema keyword (`type`, `required`, ...). */
  readonly keyword: string;
  /** Where the offending value was set, when the key holds a value of the configuration. */
  readonly origin?: Origin;
  /** `<schema file>: at '<key>': <rule>` plus `(set in <document>:<line>:<column>)`. */
  readonly message: string;
}

/**
 * Parses the bytes of a schema file (UTF-8, BOM ignored) as JSON.
 *
 * @param path - the file's path in the repository, for messages.
 * @param bytes - the file content.
 * @returns the parsed JSON value.
 * @throws CFG_ERR_SCHEMA_INVALID (422) `<path>:<line>:<column>: not valid JSON`, or
 *   `<path>: a JSON Schema must be an object or a boolean`.
 */
export function parseSchemaFile(path: string, bytes: Uint8Array): unknown {
  const text = decodeDocument(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    let where = path;
    if (m !== null) {
      const before = text.slice(0, Number(m[1]));
      const line = before.split('\n').length;
      const column = before.length - before.lastIndexOf('\n');
      where = `${path}:${line}:${column}`;
    }
    throw withData(new CFG_ERR_SCHEMA_INVALID(`${where}: not valid JSON`), { schema: path });
  }
  if (typeof json !== 'boolean' && (typeof json !== 'object' || json === null || Array.isArray(json))) {
    throw withData(new CFG_ERR_SCHEMA_INVALID(`${path}: a JSON Schema must be an object or a boolean`), { schema: path });
  }
  return json;
}

function joinName(name: string, seg: string | number): string {
  if (typeof seg === 'number') return `${name}[${seg}]`;
  return name === '' ? seg : `${name}.${seg}`;
}

/** Dotted key path of a JSON pointer into `data` (list indices as `[n]`). */
function keyPath(data: unknown, pointer: string): string {
  if (pointer === '') return '';
  let name = '';
  let node: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      name = joinName(name, Number(seg));
      node = node[Number(seg)];
    } else {
      name = joinName(name, seg);
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return name;
}

/** Origins by dotted name of every value, lists walked to their items. */
function originsByName(config: MergedConfig): Map<string, Origin> {
  const out = new Map<string, Origin>();
  const walk = (name: string, value: TreeValue, origin: Origin): void => {
    out.set(name, origin);
    if (Array.isArray(value)) (value as readonly TreeValue[]).forEach((v, i) => walk(joinName(name, i), v, origin));
    else if (typeof value === 'object' && !isNumberLiteral(value)) {
      const map = value as { readonly [k: string]: TreeValue };
      for (const k of Object.keys(map)) walk(joinName(name, k), map[k] as TreeValue, origin);
    }
  };
  for (const p of config.values()) walk(p.path.join('.'), p.value as TreeValue, p.origin);
  return out;
}

/**
 * Where the offending key was set: the additional property itself, else the key, else
 * the first value under it (a map has no origin of its own).
 */
function originOf(origins: ReadonlyMap<string, Origin>, key: string, error: ErrorObject): Origin | undefined {
  const extra = (error.params as { additionalProperty?: unknown }).additionalProperty;
  if (error.keyword === 'additionalProperties' && typeof extra === 'string') {
    const o = origins.get(joinName(key, extra));
    if (o !== undefined) return o;
  }
  const exact = origins.get(key);
  if (exact !== undefined) return exact;
  for (const [name, o] of origins) if (name.startsWith(`${key}.`) || name.startsWith(`${key}[`)) return o;
  return undefined;
}

function ruleOf(error: ErrorObject): string {
  const rule = error.message ?? `must satisfy ${error.keyword}`;
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty?: unknown }).additionalProperty;
    if (typeof extra === 'string') return `${rule} ('${extra}')`;
  }
  return rule;
}

/**
 * Validates a configuration against a schema and returns every violation (Ajv `allErrors`),
 * in Ajv's order, each (key, rule) once.
 *
 * @param config - the merged configuration, placeholders resolved.
 * @param schema - the application's schema.
 * @returns the violations; `[]` when the configuration holds.
 * @throws CFG_ERR_SCHEMA_INVALID (422) naming the schema file when it does not compile.
 */
export function findSchemaViolations(config: MergedConfig, schema: AppSchema): SchemaViolation[] {
  const validate = compile(schema);
  const data = schemaInstance(config);
  if (validate(data) === true) return [];
  const origins = originsByName(config);
  const out: SchemaViolation[] = [];
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) {
    // anyOf/oneOf/if report the branch errors themselves; the summary adds nothing.
    if ((error.keyword === 'anyOf' || error.keyword === 'oneOf' || error.keyword === 'if') && out.length > 0) continue;
    const key = keyPath(data, error.instancePath);
    const rule = ruleOf(error);
    if (seen.has(`${key}\0${rule}`)) continue;
    seen.add(`${key}\0${rule}`);
    const origin = key === '' ? undefined : originOf(origins, key, error);
    const at = origin === undefined ? '' : ` (set in ${origin.document}${origin.line === undefined ? '' : `:${origin.line}:${origin.column ?? 1}`})`;
    const message = `${schema.path}: at '${key === '' ? '(root)' : key}': ${rule}${at}`;
    out.push({ key, rule, keyword: error.keyword, ...(origin === undefined ? {} : { origin }), message });
  }
  return out;
}

/**
 * Validates a configuration against a schema and returns the first violation
 * ({@link findSchemaViolations}' first).
 *
 * @returns the violation, or `undefined` when the configuration holds.
 * @throws CFG_ERR_SCHEMA_INVALID (422) naming the schema file when it does not compile.
 */
export function findSchemaViolation(config: MergedConfig, schema: AppSchema): SchemaViolation | undefined {
  return findSchemaViolations(config, schema)[0];
}

/**
 * Validates a configuration against its application's schema before it is served
 * (SPEC §2.4).
 *
 * @param config - the merged configuration, placeholders resolved.
 * @param schema - the application's schema.
 * @throws CFG_ERR_SCHEMA_VIOLATION (422) `orders/schema.json: at 'server.port': must be
 *   integer (set in orders/application.yml:2:3)`, with `data: { schema, key, rule,
 *   keyword }`; the message names the key path and the rule, never the value.
 * @throws CFG_ERR_SCHEMA_INVALID (422) naming the schema file when it does not compile.
 */
export function checkSchema(config: MergedConfig, schema: AppSchema): void {
  const v = findSchemaViolation(config, schema);
  if (v === undefined) return;
  throw withData(new CFG_ERR_SCHEMA_VIOLATION(v.message), { schema: schema.path, key: v.key, rule: v.rule, keyword: v.keyword });
}

/** What {@link resolveAndCheck} needs of `AppConfigReader`. */
export interface SchemaReader {
  readSchema(commit: string, app: string): Promise<AppSchema | null>;
}

/**
 * The steps between merging and rendering for a served configuration (SPEC §2.2, §2.4):
 * with `resolve` (the default of `GET /v1/apps/{app}/config`), placeholders are resolved,
 * `.properties` values take the types the application's schema declares
 * (`coerce.ts`), and the result is checked against the schema, if there is one. Without
 * `resolve` the merged configuration is returned as it is (only `.properties` values
 * coerced, so a key's type does not depend on `resolve`) and the schema is not checked:
 * the caller resolves placeholders itself (as Spring clients do), and a schema written
 * for resolved values (`port: {type: integer}`) cannot judge `${port}`.
 *
 * With `secrets`, placeholders are resolved secrets-aware (`placeholders.ts` header): the
 * schema then sees composed values as they will be served (a secret's plaintext inside,
 * for a caller allowed `secrets:read`), and secrets and their whole copies as their
 * `{cipher}` text. Messages never quote a value.
 *
 * @param reader - reads the schema (`AppConfigReader`).
 * @param commit - the commit the configuration was read at.
 * @param app - the application.
 * @param merged - the merge result.
 * @param options.resolve - resolve placeholders and check the schema.
 * @param options.secrets - secrets-aware resolution.
 * @returns the configuration to render, and which values copy or compose a secret.
 * @throws CFG_ERR_PLACEHOLDER, CFG_ERR_SECRET_REFERENCE (422) from `resolvePlaceholders`,
 *   and what `secrets.compose` throws (CFG_ERR_SECRET_DECRYPT_FAILED)
 * @throws CFG_ERR_SCHEMA_VIOLATION (422), CFG_ERR_SCHEMA_INVALID (422) from {@link checkSchema}
 * @throws CFG_ERR_UNSUPPORTED_ENTRY (422) when the schema file is a symlink, submodule or LFS pointer
 */
export async function resolveAndCheckSecrets(
  reader: SchemaReader,
  commit: string,
  app: string,
  merged: MergedConfig,
  options: { readonly resolve: boolean; readonly secrets?: PlaceholderSecrets },
): Promise<ResolvedPlaceholders> {
  if (!options.resolve) {
    // Served as written, but `.properties` values still get the schema's types, so a key's
    // type never depends on resolve=; a schema that does not compile is reported by resolve=true.
    const schema = await reader.readSchema(commit, app).catch(() => null);
    let config = merged;
    if (schema !== null) {
      try {
        config = coercePropertiesValues(merged, schema);
      } catch {
        config = merged;
      }
    }
    return { config, copies: new Map(), composed: new Map() };
  }
  const resolved = resolvePlaceholdersWithSecrets(merged, options.secrets === undefined ? {} : { secrets: options.secrets });
  const schema = await reader.readSchema(commit, app);
  if (schema === null) return resolved;
  const config = coercePropertiesValues(resolved.config, schema);
  checkSchema(config, schema);
  return { ...resolved, config };
}

/**
 * {@link resolveAndCheckSecrets} without secrets, returning the configuration only
 * (`{cipher}` texts are ordinary strings here). Same errors.
 */
export async function resolveAndCheck(reader: SchemaReader, commit: string, app: string, merged: MergedConfig, options: { readonly resolve: boolean }): Promise<MergedConfig> {
  return (await resolveAndCheckSecrets(reader, commit, app, merged, options)).config;
}

export { schemaInstance, type AppSchema };
