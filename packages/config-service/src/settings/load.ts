/**
 * Loads and validates the service settings: defaults < `service.yml` < `CONFIG_SERVICE_*`
 * environment variables (SPEC §9). Validated once at start-up, deep-frozen, passed down.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { describeErrors } from './errors.js';
import type { TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { ALL_APPS, APP_PLACEHOLDER, findOverlap, isTemplateUrl } from '../git/app-patterns.js';
import { DocumentsSchema, SettingsSchema, type DocumentSettings, type Settings } from './schema.js';

/** Prefix of every environment variable that sets a service setting. */
export const ENV_PREFIX = 'CONFIG_SERVICE_';

/** `clientCa` → `CLIENT_CA`. */
function envSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

interface EnvSetting {
  /** Environment variable name. */
  name: string;
  /** Setting path in the settings object. */
  path: string[];
  /** Scalars are converted by the schema; lists and objects are read as YAML flow text. */
  structured: boolean;
}

/**
 * Every environment variable the schema accepts, derived from the schema itself:
 * `server.tls.clientCa` → `CONFIG_SERVICE_SERVER_TLS_CLIENT_CA`. Lists and maps
 * (`repositories`, `policy.grants`, `server.tls.crl`) take YAML or JSON text.
 */
export function listEnvSettings(schema: TSchema = SettingsSchema, prefix: string[] = []): EnvSetting[] {
  const out: EnvSetting[] = [];
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  for (const [key, child] of Object.entries(props ?? {})) {
    const p = [...prefix, key];
    const isObject = (child as { type?: string }).type === 'object' && (child as { properties?: unknown }).properties;
    if (isObject) out.push(...listEnvSettings(child, p));
    else {
      const type = (child as { type?: string }).type;
      out.push({ name: ENV_PREFIX + p.map(envSegment).join('_'), path: p, structured: type === 'array' || type === 'object' });
    }
  }
  return out;
}

function setPath(target: Record<string, unknown>, p: string[], value: unknown): void {
  let node = target;
  for (const seg of p.slice(0, -1)) {
    if (typeof node[seg] !== 'object' || node[seg] === null) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  }
  node[p[p.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Inputs of {@link loadSettings}; nothing is read from `process` here. */
export interface LoadSettingsInput {
  /** Path of `service.yml`; relative file settings resolve against its folder. */
  file?: string;
  /** Environment to read `CONFIG_SERVICE_*` from. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Settings given as an object (tests); merged like the file. */
  overrides?: Record<string, unknown>;
  /** Folder relative paths resolve against when no file is given. Default: cwd. */
  baseDir?: string;
}

/**
 * Loads, merges, defaults and validates the settings.
 *
 * @returns the frozen {@link Settings}, every file path made absolute.
 * @throws CFG_ERR_SETTINGS_INVALID listing every bad setting by path (and by variable
 *   name when it came from the environment); the file's YAML errors name line and column.
 */
export function loadSettings(input: LoadSettingsInput): Readonly<Settings> {
  const problems: string[] = [];
  let raw: Record<string, unknown> = input.file ? readSettingsFile(input.file) : {};
  const baseDir = input.file ? path.dirname(path.resolve(input.file)) : (input.baseDir ?? process.cwd());
  if (input.overrides) raw = { ...raw, ...structuredClone(input.overrides) };

  const fromEnv = new Map<string, string>();
  for (const setting of listEnvSettings()) {
    const text = input.env?.[setting.name];
    if (text === undefined) continue;
    let value: unknown = text;
    if (setting.structured) {
      try {
        value = parseYaml(text);
      } catch {
        problems.push(`  ${setting.path.join('.')} (from ${setting.name}): not valid YAML or JSON`);
        continue;
      }
    }
    setPath(raw, setting.path, value);
    fromEnv.set('/' + setting.path.join('/'), setting.name);
  }

  const value = Value.Default(SettingsSchema, Value.Convert(SettingsSchema, raw));
  problems.push(...describeErrors(SettingsSchema, value, (p) => [...fromEnv.entries()].find(([e]) => p === e || p.startsWith(e + '/'))?.[1]));
  if (problems.length === 0) problems.push(...crossCheck(value as Settings));
  if (problems.length > 0) throw new CFG_ERR_SETTINGS_INVALID([...new Set(problems)].join('\n'));

  return deepFreeze(resolvePaths(value as Settings, baseDir));
}

/** Reads `service.yml` as a map. @throws CFG_ERR_SETTINGS_INVALID naming the file. */
function readSettingsFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CFG_ERR_SETTINGS_INVALID(`  --config: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true, prettyErrors: true }) ?? {};
  } catch (err) {
    throw new CFG_ERR_SETTINGS_INVALID(`  ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CFG_ERR_SETTINGS_INVALID(`  ${file}: the top level must be a map`);
  return raw as Record<string, unknown>;
}

/**
 * Loads only the `documents:` section (the document limits), for `config-service
 * validate`: defaults < the settings file's `documents:` < `CONFIG_SERVICE_DOCUMENTS_*`.
 * Every other section of the file is ignored (it may name files that do not exist in CI).
 *
 * @returns the frozen limits.
 * @throws CFG_ERR_SETTINGS_INVALID naming every bad setting (and its variable).
 */
export function loadDocumentSettings(input: Pick<LoadSettingsInput, 'file' | 'env'>): Readonly<DocumentSettings> {
  const file = input.file ? readSettingsFile(input.file) : {};
  const raw: Record<string, unknown> = typeof file.documents === 'object' && file.documents !== null ? { ...(file.documents as Record<string, unknown>) } : {};
  const fromEnv = new Map<string, string>();
  for (const setting of listEnvSettings(DocumentsSchema, ['documents'])) {
    const text = input.env?.[setting.name];
    if (text === undefined) continue;
    setPath(raw, setting.path.slice(1), text);
    fromEnv.set('/' + setting.path.slice(1).join('/'), setting.name);
  }
  const value = Value.Default(DocumentsSchema, Value.Convert(DocumentsSchema, raw));
  const problems = describeErrors(DocumentsSchema, value, (p) => fromEnv.get(p), 'documents');
  if (problems.length > 0) throw new CFG_ERR_SETTINGS_INVALID([...new Set(problems)].join('\n'));
  return deepFreeze(value as DocumentSettings);
}

/** The `secrets.keys` entries as {@link loadSecretKeySettings} returns them: paths made absolute. */
export type SecretKeySettings = Settings['secrets']['keys'];

/**
 * Loads only the `secrets.keys` list of a settings file (ids and key files), for
 * `config-service validate` and `encrypt --config`, which check `{cipher}` values and key
 * ids against the service's keys: the file's list, or `CONFIG_SERVICE_SECRETS_KEYS` (YAML
 * or JSON) when set, as for the service. Every other section is ignored, and the key
 * files are not read here (CI may not have them).
 *
 * @returns the keys, file paths resolved against the settings file's folder; `[]` when none.
 * @throws CFG_ERR_SETTINGS_INVALID for an unreadable file or a bad `secrets.keys` entry.
 */
export function loadSecretKeySettings(file: string | undefined, env: Readonly<Record<string, string | undefined>> = {}): SecretKeySettings {
  const raw = file === undefined ? {} : readSettingsFile(file);
  const secrets = typeof raw.secrets === 'object' && raw.secrets !== null ? (raw.secrets as Record<string, unknown>) : {};
  let keys: unknown = secrets.keys ?? [];
  const fromEnv = env[`${ENV_PREFIX}SECRETS_KEYS`];
  if (fromEnv !== undefined) {
    try {
      keys = parseYaml(fromEnv);
    } catch {
      throw new CFG_ERR_SETTINGS_INVALID(`  secrets.keys (from ${ENV_PREFIX}SECRETS_KEYS): not valid YAML or JSON`);
    }
  }
  const schema = SettingsSchema.properties.secrets.properties.keys;
  const value = Value.Default(schema, Value.Convert(schema, keys));
  const problems = describeErrors(schema, value, () => (fromEnv === undefined ? undefined : `${ENV_PREFIX}SECRETS_KEYS`), 'secrets.keys');
  if (problems.length > 0) throw new CFG_ERR_SETTINGS_INVALID(problems.join('\n'));
  const base = file === undefined ? process.cwd() : path.dirname(path.resolve(file));
  return deepFreeze(
    (value as SecretKeySettings).map((k) => ({
      ...k,
      ...(k.privateKeyFile && { privateKeyFile: path.resolve(base, k.privateKeyFile) }),
      ...(k.publicKeyFile && { publicKeyFile: path.resolve(base, k.publicKeyFile) }),
    })),
  );
}

function crossCheck(s: Settings): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  let templates = 0;
  s.repositories.forEach((repo, i) => {
    if (Boolean(repo.path) === Boolean(repo.url)) problems.push(`  repositories.${i}: set exactly one of 'path' or 'url'`);
    if (names.has(repo.name)) problems.push(`  repositories.${i}.name: '${repo.name}' is used twice`);
    names.add(repo.name);
    const userinfo = repo.url !== undefined && /^[a-z]+:\/\/[^/]*@/i.test(repo.url);
    if (userinfo && repo.auth) {
      problems.push(`  repositories.${i}: credentials are given both in 'url' and in 'auth'; keep one`);
    }
    if (repo.url !== undefined && /^http:\/\//i.test(repo.url) && (userinfo || repo.auth !== undefined) && repo.allowInsecureHttp !== true) {
      problems.push(
        `  repositories.${i}.url: a plain http:// URL would send the credentials (${userinfo ? 'user info in the URL' : "'auth'"}) unencrypted; use https://, or set repositories.${i}.allowInsecureHttp: true for a Git server on this host or behind an encrypted tunnel`,
      );
    }
    const template = repo.url !== undefined && isTemplateUrl(repo.url);
    if (template) {
      templates++;
      if (templates > 1) problems.push(`  repositories.${i}.url: only one entry may be a template with '${APP_PLACEHOLDER}'`);
      if (repo.url!.split(APP_PLACEHOLDER).length !== 2 || !/^https?:\/\/[^/{}]+\/[^?#]*\{app\}[^?#]*$/i.test(repo.url!)) {
        problems.push(`  repositories.${i}.url: '${APP_PLACEHOLDER}' must appear once, in the path`);
      }
    } else {
      if (repo.url !== undefined && /[{}]/.test(repo.url)) problems.push(`  repositories.${i}.url: the only placeholder is '${APP_PLACEHOLDER}'`);
      if (repo.maxMirrors !== undefined) problems.push(`  repositories.${i}.maxMirrors: only for the template entry (a url with '${APP_PLACEHOLDER}')`);
      if (repo.evictAfterIdleMs !== undefined) problems.push(`  repositories.${i}.evictAfterIdleMs: only for the template entry (a url with '${APP_PLACEHOLDER}')`);
    }
  });
  const overlap = findOverlap(s.repositories.map((r) => r.apps ?? ALL_APPS));
  if (overlap !== undefined) {
    const a = s.repositories[overlap.first]!;
    const b = s.repositories[overlap.second]!;
    const glob = (r: typeof a, g: string): string => (r.apps === undefined ? `'${g}' (no 'apps': every application)` : `'${g}'`);
    problems.push(
      `  repositories: '${a.name}' (apps ${glob(a, overlap.firstGlob)}) and '${b.name}' (apps ${glob(b, overlap.secondGlob)}) both claim applications, e.g. '${overlap.example}'; an application must belong to one repository`,
    );
  }
  const g = s.git;
  for (const key of ['connectTimeoutMs', 'idleTimeoutMs'] as const) {
    if (g[key] >= g.syncTimeoutMs) problems.push(`  git.${key}: must be below git.syncTimeoutMs (${g.syncTimeoutMs})`);
  }
  if (g.retryMinMs > g.retryMaxMs) problems.push('  git.retryMinMs: must not exceed git.retryMaxMs');
  if (s.jwt && Boolean(s.jwt.publicKeyFile) === Boolean(s.jwt.jwksFile)) problems.push("  jwt: set exactly one of 'publicKeyFile' or 'jwksFile'");
  if (s.secrets.encryptKey && !s.secrets.keys.some((k) => k.id === s.secrets.encryptKey)) {
    problems.push(`  secrets.encryptKey: no key with id '${s.secrets.encryptKey}' in secrets.keys`);
  }
  return problems;
}

function resolvePaths(s: Settings, baseDir: string): Settings {
  const abs = (p: string) => path.resolve(baseDir, p);
  const dataDir = abs(s.dataDir);
  return {
    ...s,
    dataDir,
    server: {
      ...s.server,
      tls: { ...s.server.tls, cert: abs(s.server.tls.cert), key: abs(s.server.tls.key), clientCa: abs(s.server.tls.clientCa), crl: s.server.tls.crl.map(abs) },
    },
    repositories: s.repositories.map((r) => ({
      ...r,
      ...(r.path ? { path: abs(r.path) } : {}),
      ...(r.webhookSecretFile ? { webhookSecretFile: abs(r.webhookSecretFile) } : {}),
      ...(r.auth ? { auth: { ...r.auth, ...(r.auth.passwordFile ? { passwordFile: abs(r.auth.passwordFile) } : {}) } } : {}),
    })),
    ...(s.jwt ? { jwt: { ...s.jwt, ...(s.jwt.publicKeyFile && { publicKeyFile: abs(s.jwt.publicKeyFile) }), ...(s.jwt.jwksFile && { jwksFile: abs(s.jwt.jwksFile) }) } } : {}),
    secrets: {
      ...s.secrets,
      keys: s.secrets.keys.map((k) => ({
        ...k,
        ...(k.privateKeyFile && { privateKeyFile: abs(k.privateKeyFile) }),
        ...(k.publicKeyFile && { publicKeyFile: abs(k.publicKeyFile) }),
      })),
    },
    audit: {
      ...s.audit,
      sqlitePath: s.audit.sqlitePath ? abs(s.audit.sqlitePath) : path.join(dataDir, 'audit.sqlite'),
      checkpoints: {
        ...s.audit.checkpoints,
        keys: s.audit.checkpoints.keys.map((k) => ({
          ...k,
          ...(k.privateKeyFile && { privateKeyFile: abs(k.privateKeyFile) }),
          ...(k.publicKeyFile && { publicKeyFile: abs(k.publicKeyFile) }),
        })),
      },
    },
  };
}
