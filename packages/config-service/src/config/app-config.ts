/**
 * Reads one application's documents from a Git commit in the configured layout and
 * merges them in SPEC §2.1 order. Parsed documents are cached by blob id (SPEC §11: the
 * `yaml` parser is slow, and a blob never changes), so a new commit re-parses only the
 * documents it changed.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { CFG_ERR_APP_NOT_FOUND, CFG_ERR_DOCUMENT_INVALID, CFG_ERR_DOCUMENT_LIMIT_EXCEEDED, withData } from '../errors.js';
import type { GitRepository, TreeEntry } from '../git/repository.js';
import { parseSchemaFile, resolveAndCheckSecrets, type AppSchema } from './schema.js';
import { documentBinding, type SecretsStep } from './secrets-step.js';
import type { SecretBinding } from '../secrets/binding.js';
import { EXTENSIONS_LOWEST_FIRST, layerOrder, mergeSources, selectSources } from './merge.js';
import { parseDocument, type ParsedDocument } from './parse.js';
import { explainConfig } from './explain.js';
import { envVariables, render, type EnvNaming } from './render.js';
import type { Format, MergedConfig, PropertySource } from './types.js';

/** Folders of an application that hold files by path, overlaid per profile: raw files and templates. */
export type OverlayBase = 'files' | 'templates';

/** Repository layouts of SPEC §2. */
export type Layout = 'folders' | 'spring';

/** The documents and merge result for one (commit, app, profiles). */
export interface AppConfig {
  readonly app: string;
  readonly profiles: readonly string[];
  readonly commit: string;
  /** Property sources, lowest precedence first. */
  readonly sources: readonly PropertySource[];
  readonly merged: MergedConfig;
}

const APP_DOC = 'application';

/**
 * One raw file of an application (SPEC §2: `<app>/files/**`, overlaid by
 * `<app>/files-<profile>/**`, later profile wins by path).
 */
export interface RawFileEntry {
  /** Path inside the files folder, `/`-separated (`conf/logback.xml`). */
  readonly path: string;
  /** Path from the repository root (`orders/files-prod/conf/logback.xml`). */
  readonly source: string;
  /** Object id (40 hex) of the blob, symlink or submodule commit. */
  readonly oid: string;
  /** Kind of entry; callers refuse `symlink` and `submodule` (SPEC §2.3). */
  readonly type: 'blob' | 'symlink' | 'submodule';
}


/**
 * The part of {@link GitRepository} that {@link AppConfigReader} reads through: trees and
 * files at a commit. `GitRepository` is one; `config-service validate` reads a working
 * tree through another (`DirectorySource` in `validate/directory-source.ts`), so both run the same code.
 */
export type ConfigSource = Pick<GitRepository, 'readTree' | 'readFileAt' | 'listFiles'>;

/**
 * Parses one document's bytes into property sources: `parseDocument` with the service's
 * limits, maybe in a worker thread (`DocumentParserPool`). Rejects with
 * CFG_ERR_DOCUMENT_INVALID or CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) for a bad document.
 */
export type DocumentParser = (input: { readonly path: string; readonly bytes: Uint8Array; readonly commit?: string }) => Promise<ParsedDocument>;

/** Options of {@link AppConfigReader}. */
export interface AppConfigReaderOptions {
  /** Default: `parseDocument` on the calling thread with the default limits. */
  readonly parse?: DocumentParser;
  /** Parsed documents kept, by blob id; default 20000. */
  readonly parsedCacheEntries?: number;
  /**
   * Most memory the parsed documents may hold, estimated at {@link PARSED_BYTES_PER_BYTE}
   * bytes per byte of document; default 32 MiB. A parsed document (values, property paths
   * and their origins) takes about 15 times its text, so a repository of thousands of
   * applications would otherwise keep hundreds of MiB.
   */
  readonly parsedCacheBytes?: number;
}

/** Estimated memory of a parsed document per byte of its text (measured: about 15). */
export const PARSED_BYTES_PER_BYTE = 16;

const parseInline: DocumentParser = async (input) => parseDocument(input);

/** Codes of document errors that depend only on the bytes (and limits): kept by blob id. */
const DOCUMENT_ERROR_CODES: ReadonlySet<string> = new Set(['CFG_ERR_DOCUMENT_INVALID', 'CFG_ERR_DOCUMENT_LIMIT_EXCEEDED']);

/** Limits that depend on the machine's load, not on the bytes: never remembered. */
const TRANSIENT_LIMITS: ReadonlySet<unknown> = new Set(['documents.parseTimeoutMs', 'documents.workerMemoryMb']);

/** Name of the schema file: `<app>/schema.json` (folders), `<app>.schema.json` at the root (spring). */
const SCHEMA_FILE = 'schema.json';
const SPRING_SCHEMA_SUFFIX = '.schema.json';

/**
 * Reads application configuration from one repository.
 */
export class AppConfigReader {
  readonly #repo: ConfigSource;
  readonly #layout: Layout;
  readonly #parse: DocumentParser;
  /** Parsed documents, or the document error they gave, by blob id and path. */
  readonly #parsed: LRUCache<string, ParsedDocument | { readonly error: Error }>;
  /** Parses in progress, so concurrent cold reads of one blob parse it once. */
  readonly #parsing = new Map<string, Promise<ParsedDocument>>();
  readonly #schemas = new LRUCache<string, { json: unknown }>({ max: 1_000 });
  /** Dependency keys ({@link dependencyKey}) by commit, app, profiles and parts. */
  readonly #dependencies = new LRUCache<string, string>({ max: 10_000 });

  /**
   * @param repo the repository to read (local or mirror)
   * @param layout `folders` (`<app>/application-<profile>.yml`) or `spring`
   *   (`<app>-<profile>.yml` beside `application*.yml` at the root)
   * @param options.parse the document parser (limits, worker threads)
   * @param options.parsedCacheEntries parsed documents kept, by blob id (default 20000)
   */
  constructor(repo: ConfigSource, layout: Layout, options: AppConfigReaderOptions = {}) {
    this.#repo = repo;
    this.#layout = layout;
    this.#parse = options.parse ?? parseInline;
    this.#parsed = new LRUCache<string, ParsedDocument | { readonly error: Error }>({
      max: Math.max(1, options.parsedCacheEntries ?? 20_000),
      maxSize: Math.max(1, options.parsedCacheBytes ?? 32 * 1024 * 1024),
      // Every entry is given its size when it is set; this only covers an entry set without one.
      sizeCalculation: () => 1024,
    });
  }

  /**
   * Whether `app` exists at `commit`. In the `folders` layout, its folder must hold
   * configuration ({@link holdsConfiguration}: a document `application[-<profile>].<ext>`,
   * a `schema.json`, a `files/` / `files-<profile>/` folder of raw files, or a `templates/` /
   * `templates-<profile>/` folder of templates), so a folder
   * such as `docs/` or `scripts/` is never an application. In the `spring` layout, a root
   * document named `<app>.<ext>` or `<app>-<profile>.<ext>`.
   */
  async appExists(commit: string, app: string): Promise<boolean> {
    if (this.#layout === 'folders') {
      const dir = await this.#repo.readTree(commit, app);
      return dir !== null && holdsConfiguration(dir);
    }
    const root = (await this.#repo.readTree(commit, '')) ?? new Map<string, TreeEntry>();
    for (const name of root.keys()) {
      const ext = EXTENSIONS_LOWEST_FIRST.find((e) => name.endsWith(e));
      if (!ext || name.endsWith(SPRING_SCHEMA_SUFFIX)) continue;
      const base = name.slice(0, -ext.length);
      if (base === app || base.startsWith(app + '-')) return true;
    }
    return false;
  }

  /**
   * The applications at `commit`, sorted: in the `folders` layout every top-level folder
   * (not starting with `.`) that {@link holdsConfiguration}; in the `spring` layout the
   * `<app>` of every root document not named `application*`.
   */
  async listApps(commit: string): Promise<string[]> {
    const root = (await this.#repo.readTree(commit, '')) ?? new Map<string, TreeEntry>();
    const apps = new Set<string>();
    if (this.#layout === 'folders') {
      for (const [name, entry] of root) {
        if (entry.type !== 'tree' || name.startsWith('.')) continue;
        const dir = await this.#repo.readTree(commit, name);
        if (dir !== null && holdsConfiguration(dir)) apps.add(name);
      }
    } else {
      for (const name of root.keys()) {
        const ext = EXTENSIONS_LOWEST_FIRST.find((e) => name.endsWith(e));
        if (ext && !name.startsWith(APP_DOC) && !name.endsWith(SPRING_SCHEMA_SUFFIX)) apps.add(name.slice(0, -ext.length).split('-')[0]!);
      }
    }
    return [...apps].sort();
  }

  /**
   * Reads, parses and merges the documents of `app` for `profiles` at `commit`.
   *
   * @throws CFG_ERR_APP_NOT_FOUND (404) when the application does not exist at the commit
   * @throws CFG_ERR_DOCUMENT_INVALID (422) naming file, line, column and commit of a broken document
   * @throws CFG_ERR_UNSUPPORTED_ENTRY (422) for a symlink, submodule or LFS pointer in the layout
   */
  async read(commit: string, app: string, profiles: readonly string[]): Promise<AppConfig> {
    if (!(await this.appExists(commit, app))) throw new CFG_ERR_APP_NOT_FOUND(app);
    const sources: PropertySource[] = [];
    for (const { dir, name } of this.#documentLocations(app, profiles)) {
      const parsed = await this.#readDocument(commit, dir, name);
      if (parsed) sources.push(...selectSources(parsed, profiles));
    }
    return { app, profiles, commit, sources, merged: mergeSources(sources) };
  }

  /**
   * The Git entries {@link read} would read for `app` and `profiles` at `commit` (the
   * documents present, in the same layer and extension order), followed by the schema
   * file ({@link readSchema}) when there is one. Nothing is parsed; only trees are read.
   * Used to tell whether a commit changed what an application reads (history).
   *
   * @returns path from the repository root and object id of each entry; `[]` when the
   *   application does not exist at `commit` (it reads nothing there).
   */
  async documentOids(commit: string, app: string, profiles: readonly string[]): Promise<Array<{ path: string; oid: string }>> {
    if (!(await this.appExists(commit, app))) return [];
    const out: Array<{ path: string; oid: string }> = [];
    const locations = [...this.#documentLocations(app, profiles), this.#schemaLocation(app)];
    for (const { dir, name } of locations) {
      const entry = (await this.#repo.readTree(commit, dir))?.get(name);
      if (entry !== undefined && entry.type !== 'tree') out.push({ path: dir ? `${dir}/${name}` : name, oid: entry.oid });
    }
    return out;
  }

  /**
   * Where the documents of `app` for `profiles` may be, lowest precedence first: the
   * layers of SPEC §2.1 ({@link layerOrder}), each in {@link EXTENSIONS_LOWEST_FIRST} order.
   */
  #documentLocations(app: string, profiles: readonly string[]): Array<{ dir: string; name: string }> {
    const out: Array<{ dir: string; name: string }> = [];
    for (const layer of layerOrder(app, profiles)) {
      const base = layer.profile ? `${APP_DOC}-${layer.profile}` : APP_DOC;
      const [dir, name] =
        layer.scope === 'shared' ? ['', base]
        : this.#layout === 'folders' ? [app, base]
        : ['', layer.profile ? `${app}-${layer.profile}` : app];
      for (const ext of EXTENSIONS_LOWEST_FIRST) out.push({ dir, name: name + ext });
    }
    return out;
  }

  /** Where the schema file of `app` is (see {@link readSchema}). */
  #schemaLocation(app: string): { dir: string; name: string } {
    return this.#layout === 'folders' ? { dir: app, name: SCHEMA_FILE } : { dir: '', name: `${app}${SPRING_SCHEMA_SUFFIX}` };
  }

  /**
   * The binding that `document` gives the secrets written in it when read for `app`
   * (`shared` for the root `application*` documents, else `app:<app>`; see
   * `documentBinding`). Used by the Spring Environment, which applies secrets per source.
   */
  bindingOf(app: string, document: string): SecretBinding {
    return documentBinding(app, document);
  }

  /**
   * The whole serving pipeline for one request: read and merge ({@link read}), resolve
   * placeholders and check the schema (unless `resolve` is false), decrypt or redact
   * secrets (`secrets`), then render.
   *
   * Secrets and placeholders (SPEC §2.2, §2.5): with `secrets`, placeholders are resolved
   * secrets-aware (`placeholders.ts`): a placeholder that puts a secret inside a longer
   * value gets the secret's plaintext from `secrets.compose` (decrypt), or the request is
   * refused (redact); whole copies of a secret stay secrets. The schema sees the values
   * so resolved. Then `secrets.apply` decrypts or redacts every secret, each checked
   * against the binding of the document it is written in.
   *
   * @param options.resolve resolve `${...}` placeholders and check `<app>/schema.json`
   * @param options.secrets the secrets step (made by `secrets/` `secretsStep`: decrypt for
   *   callers allowed `secrets:read`, redact otherwise, mask for explain)
   * @param options.envNaming environment-name rule for `env`/`dotenv` and `envMap`
   * @param options.envMap render the environment variables as a JSON object instead of `format`
   *   (what `config-init exec` asks for)
   * @param options.explain render the `explain=true` JSON ({@link explainConfig}) instead of `format`
   * @returns the merge result, the rendered UTF-8 text, the names of the secret keys served
   *   and the ids of the keys that decrypted them
   * @throws everything {@link read} throws, CFG_ERR_PLACEHOLDER, CFG_ERR_SECRET_REFERENCE,
   *   CFG_ERR_SCHEMA_VIOLATION, CFG_ERR_SCHEMA_INVALID, CFG_ERR_SECRET_DECRYPT_FAILED,
   *   CFG_ERR_UNRENDERABLE (all 422)
   */
  async readRendered(
    commit: string,
    app: string,
    profiles: readonly string[],
    format: Format,
    options: {
      readonly resolve: boolean;
      readonly secrets?: SecretsStep;
      readonly envNaming?: EnvNaming;
      readonly envMap?: boolean;
      /** Answer the `explain=true` JSON (origins and overridden values) instead of `format`. */
      readonly explain?: boolean;
    },
  ): Promise<{ config: AppConfig; text: string; secretKeys: string[]; secretKeyIds: string[] }> {
    const { config, merged, secretKeys, secretKeyIds } = await this.readResolved(commit, app, profiles, options);
    const naming = options.envNaming ?? 'standard';
    const text = options.explain
      ? explainConfig(merged, config.sources, commit)
      : options.envMap
        ? `${JSON.stringify(Object.fromEntries(envVariables(merged, naming)), null, 2)}\n`
        : render(merged, format, { envNaming: naming });
    return { config, text, secretKeys, secretKeyIds };
  }

  /**
   * The first steps of {@link readRendered} without rendering: read and merge, resolve
   * placeholders and check the schema (unless `resolve` is false), then apply `secrets`.
   * Templates render from this.
   *
   * @returns the merge result, the configuration `resolved` before the secrets step
   *   (`{cipher}` values as written) and `merged` after it, the secret keys and key ids
   * @throws what {@link readRendered} throws, CFG_ERR_UNRENDERABLE aside
   */
  async readResolved(
    commit: string,
    app: string,
    profiles: readonly string[],
    options: { readonly resolve: boolean; readonly secrets?: SecretsStep | undefined },
  ): Promise<{ config: AppConfig; resolved: MergedConfig; merged: MergedConfig; secretKeys: string[]; secretKeyIds: string[] }> {
    const config = await this.read(commit, app, profiles);
    const step = options.secrets;
    const bindingOf = (document: string): SecretBinding => documentBinding(app, document);
    const compose = step?.compose;
    const resolved = await resolveAndCheckSecrets(this, commit, app, config.merged, {
      resolve: options.resolve,
      ...(step !== undefined && {
        secrets: {
          isSecret: (text: string) => step.isSecret(text),
          ...(compose !== undefined && { compose: (secret, key) => compose(secret, key, bindingOf(secret.origin.document)) }),
        },
      }),
    });
    if (!step) return { config, resolved: resolved.config, merged: resolved.config, secretKeys: [], secretKeyIds: [] };
    const applied = step.apply(resolved.config, { bindingOf, copies: resolved.copies, composed: resolved.composed });
    return { config, resolved: resolved.config, merged: applied.config, secretKeys: applied.secretKeys, secretKeyIds: applied.secretKeyIds };
  }

  /**
   * The raw-file folders of `app` for `profiles`, lowest precedence first:
   * `<app>/files`, then `<app>/files-<p>` per profile in request order (a profile named
   * twice counts at its last position, as in {@link layerOrder}). The same folders in both
   * layouts.
   */
  rawFileFolders(app: string, profiles: readonly string[]): string[] {
    return this.overlayFolders(app, profiles, 'files');
  }

  /**
   * The overlay folders of `app` named `base` (`files`, `templates`), lowest precedence
   * first: `<app>/<base>`, then `<app>/<base>-<p>` per profile in request order (a profile
   * named twice counts at its last position). The same folders in both layouts.
   */
  overlayFolders(app: string, profiles: readonly string[], base: OverlayBase): string[] {
    const unique = profiles.filter((p, i) => profiles.lastIndexOf(p) === i);
    return [`${app}/${base}`, ...unique.map((p) => `${app}/${base}-${p}`)];
  }

  /**
   * Lists the raw files of `app` for `profiles` at `commit`: every file below
   * {@link rawFileFolders}, a higher folder's file replacing a lower one at the same path.
   * Symlinks and submodules are listed with their type; nothing is read.
   *
   * @returns entries sorted by `path` (UTF-16 code units).
   * @throws CFG_ERR_APP_NOT_FOUND (404) when the application does not exist at the commit
   */
  async listRawFiles(commit: string, app: string, profiles: readonly string[]): Promise<RawFileEntry[]> {
    return this.listOverlay(commit, app, profiles, 'files');
  }

  /**
   * Lists the files of the overlay folders `base` of `app` ({@link overlayFolders}) at
   * `commit`, a higher folder's file replacing a lower one at the same path. Nothing is read
   * but trees.
   *
   * @returns entries sorted by `path` (UTF-16 code units).
   * @throws CFG_ERR_APP_NOT_FOUND (404) when the application does not exist at the commit
   */
  async listOverlay(commit: string, app: string, profiles: readonly string[], base: OverlayBase): Promise<RawFileEntry[]> {
    if (!(await this.appExists(commit, app))) throw new CFG_ERR_APP_NOT_FOUND(app);
    const byPath = new Map<string, RawFileEntry>();
    for (const folder of this.overlayFolders(app, profiles, base)) {
      for (const f of await this.#repo.listFiles(commit, folder)) {
        const path = f.path.slice(folder.length + 1);
        byPath.set(path, { path, source: f.path, oid: f.oid, type: f.type });
      }
    }
    return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * What an answer for `app` and `profiles` at `commit` depends on, as one SHA-256 (hex),
   * computed from trees only (no blob is read): whether the application exists, and with
   * `documents` the path, kind and object id of every document {@link read} reads (shared
   * `application*` ones included, each extension apart, so a `.properties` that starts to
   * shadow a `.yml` changes it) and of the schema file; then every entry below the overlay
   * folders named in `overlays` ({@link overlayFolders}).
   *
   * Two commits with the same key give the same answers for the same request options, so
   * ETags and rendered-response caches keyed by it follow the content, not the commit: a
   * commit that touches another application leaves this key as it was. Remembered per
   * (commit, app, profiles, parts).
   */
  async dependencyKey(commit: string, app: string, profiles: readonly string[], parts: { readonly documents: boolean; readonly overlays?: readonly OverlayBase[] }): Promise<string> {
    const overlays = parts.overlays ?? [];
    const memo = `${commit}\0${app}\0${profiles.join(',')}\0${parts.documents ? 'd' : ''}\0${overlays.join(',')}`;
    const hit = this.#dependencies.get(memo);
    if (hit !== undefined) return hit;
    const lines: string[] = [this.#layout];
    const exists = await this.appExists(commit, app);
    lines.push(exists ? `app ${app}` : `no app ${app}`);
    if (exists && parts.documents) {
      for (const { dir, name } of [...this.#documentLocations(app, profiles), this.#schemaLocation(app)]) {
        const entry = (await this.#repo.readTree(commit, dir))?.get(name);
        if (entry !== undefined) lines.push(`doc ${entry.type} ${entry.oid} ${dir ? `${dir}/${name}` : name}`);
      }
    }
    if (exists) {
      for (const base of overlays) {
        for (const folder of this.overlayFolders(app, profiles, base)) {
          for (const f of await this.#repo.listFiles(commit, folder)) lines.push(`${base} ${f.type} ${f.oid} ${f.path}`);
        }
      }
    }
    const key = createHash('sha256').update(lines.join('\n')).digest('hex');
    this.#dependencies.set(memo, key);
    return key;
  }

  /**
   * Reads one raw file of `app` for `profiles` at `commit`: the highest folder of
   * {@link rawFileFolders} that holds a file at `segments` wins.
   *
   * @param segments - the path inside the files folder, already validated by the caller
   *   (no empty, `.` or `..` segment; the git layer also refuses those).
   * @returns the winning file's repository path, blob id and bytes, or `null` when no
   *   folder holds a regular file there.
   * @throws CFG_ERR_APP_NOT_FOUND (404) when the application does not exist at the commit
   * @throws CFG_ERR_UNSUPPORTED_ENTRY (422) when the winning entry is a symlink, a
   *   submodule or a Git LFS pointer (never followed or served)
   */
  async readRawFile(commit: string, app: string, profiles: readonly string[], segments: readonly string[]): Promise<{ source: string; oid: string; bytes: Uint8Array } | null> {
    if (!(await this.appExists(commit, app))) throw new CFG_ERR_APP_NOT_FOUND(app);
    const folders = this.rawFileFolders(app, profiles).reverse();
    for (const folder of folders) {
      const source = `${folder}/${segments.join('/')}`;
      const file = await this.#repo.readFileAt(commit, source);
      if (file) return { source, oid: file.oid, bytes: file.bytes };
    }
    return null;
  }

  /**
   * The object id of the entry {@link readRawFile} would serve (trees only, nothing read;
   * `<kind>:<id>` for a symlink or submodule, which it refuses), or `null` when no folder
   * holds one there.
   */
  async rawFileOid(commit: string, app: string, profiles: readonly string[], segments: readonly string[]): Promise<string | null> {
    for (const folder of this.rawFileFolders(app, profiles).reverse()) {
      const parts = `${folder}/${segments.join('/')}`.split('/');
      const entry = (await this.#repo.readTree(commit, parts.slice(0, -1).join('/')))?.get(parts[parts.length - 1] as string);
      if (entry !== undefined && entry.type !== 'tree') return entry.type === 'blob' ? entry.oid : `${entry.type}:${entry.oid}`;
    }
    return null;
  }

  /**
   * The JSON Schema of `app` at `commit` (SPEC §2.4): `<app>/schema.json` in the `folders`
   * layout, `<app>.schema.json` at the repository root in the `spring` layout (such files
   * are not documents and do not make an application). Parsed files are cached by blob id.
   *
   * @returns the schema's blob id, path and parsed JSON, or `null` when there is none.
   * @throws CFG_ERR_SCHEMA_INVALID (422) naming the file when it is not JSON
   * @throws CFG_ERR_UNSUPPORTED_ENTRY (422) when it is a symlink, submodule or LFS pointer
   */
  async readSchema(commit: string, app: string): Promise<AppSchema | null> {
    const { dir, name } = this.#schemaLocation(app);
    const entry = (await this.#repo.readTree(commit, dir))?.get(name);
    if (entry === undefined || entry.type === 'tree') return null;
    const path = dir ? `${dir}/${name}` : name;
    const cached = this.#schemas.get(`${entry.oid}\0${path}`);
    if (cached) return { oid: entry.oid, path, json: cached.json };
    const file = await this.#repo.readFileAt(commit, path);
    if (!file) return null;
    const json = parseSchemaFile(path, file.bytes);
    this.#schemas.set(`${entry.oid}\0${path}`, { json });
    return { oid: file.oid, path, json };
  }

  async #readDocument(commit: string, dir: string, name: string): Promise<ParsedDocument | null> {
    const tree = await this.#repo.readTree(commit, dir);
    const entry = tree?.get(name);
    if (!entry) return null;
    const docPath = dir ? `${dir}/${name}` : name;
    const key = `${entry.oid}\0${docPath}`;
    let parsing = this.#parsing.get(key);
    if (parsing === undefined) {
      const cached = this.#parsed.get(key);
      if (cached !== undefined) {
        if ('error' in cached) throw withCommit(cached.error, commit);
        return cached;
      }
      const file = await this.#repo.readFileAt(commit, docPath);
      if (!file) return null;
      // Another request may have started the same parse while this one read the blob.
      parsing = this.#parsing.get(key);
      if (parsing === undefined) {
        parsing = this.#parse({ path: docPath, bytes: file.bytes });
        const size = file.bytes.byteLength * PARSED_BYTES_PER_BYTE + 512;
        this.#parsing.set(key, parsing);
        const done = (): void => {
          this.#parsing.delete(key);
        };
        parsing.then(
          (parsed) => {
            done();
            this.#parsed.set(key, parsed, { size });
          },
          (err: Error & { code?: string; data?: Record<string, unknown> }) => {
            done();
            if (err.code !== undefined && DOCUMENT_ERROR_CODES.has(err.code) && !TRANSIENT_LIMITS.has(err.data?.limit)) this.#parsed.set(key, { error: err }, { size: 1024 });
          },
        );
      }
    }
    try {
      return await parsing;
    } catch (err) {
      throw withCommit(err as Error, commit);
    }
  }
}

const DOCUMENT_NAME = /^application(?:-[^/]+)?\.(?:yml|yaml|json|properties)$/;

/**
 * Whether a folder of the `folders` layout holds configuration, and so is an application:
 * a document (`application.yml`, `application-prod.properties`, ...), a `schema.json`, or
 * a `files/` or `files-<profile>/` folder (raw files are served per application), or a
 * `templates/` or `templates-<profile>/` folder (templates are rendered per application).
 * Anything else (`docs/` with a README, `scripts/`, `.github/`) is not an application.
 */
export function holdsConfiguration(dir: ReadonlyMap<string, TreeEntry>): boolean {
  for (const [name, entry] of dir) {
    if (entry.type === 'tree') {
      if (name === 'files' || name.startsWith('files-') || name === 'templates' || name.startsWith('templates-')) return true;
    } else if (DOCUMENT_NAME.test(name) || name === SCHEMA_FILE) return true;
  }
  return false;
}

/** A document error with the commit it was read at (message and `data.commit`); others as they are. */
function withCommit(err: Error & { code?: string; data?: Record<string, unknown> }, commit: string): Error {
  if (err.code === 'CFG_ERR_DOCUMENT_INVALID') return withData(new CFG_ERR_DOCUMENT_INVALID(`${err.message} (commit ${commit})`), { ...err.data, commit });
  if (err.code === 'CFG_ERR_DOCUMENT_LIMIT_EXCEEDED') return withData(new CFG_ERR_DOCUMENT_LIMIT_EXCEEDED(`${err.message} (commit ${commit})`), { ...err.data, commit });
  return err;
}
