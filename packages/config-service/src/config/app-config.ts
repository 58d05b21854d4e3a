/**
 * Reads one application's documents from a Git commit in the configured layout and
 * merges them in SPEC §2.1 order. Parsed documents are cached by blob id (SPEC §11: the
 * `yaml` parser is slow, and a blob never changes), so a new commit re-parses only the
 * documents it changed.
 */
import { LRUCache } from 'lru-cache';
import { CFG_ERR_APP_NOT_FOUND, CFG_ERR_DOCUMENT_INVALID, withData } from '../errors.js';
import type { GitRepository, TreeEntry } from '../git/repository.js';
import { EXTENSIONS_LOWEST_FIRST, layerOrder, mergeSources, selectSources } from './merge.js';
import { parseDocument, type ParsedDocument } from './parse.js';
import type { MergedConfig, PropertySource } from './types.js';

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
 * Reads application configuration from one repository.
 */
export class AppConfigReader {
  readonly #repo: GitRepository;
  readonly #layout: Layout;
  readonly #parsed = new LRUCache<string, ParsedDocument>({ max: 20_000 });

  /**
   * @param repo the repository to read (local or mirror)
   * @param layout `folders` (`<app>/application-<profile>.yml`) or `spring`
   *   (`<app>-<profile>.yml` beside `application*.yml` at the root)
   */
  constructor(repo: GitRepository, layout: Layout) {
    this.#repo = repo;
    this.#layout = layout;
  }

  /**
   * Whether `app` exists at `commit` (SPEC §2.4: its folder holds at least one document
   * or file; in the `spring` layout, a root document named `<app>.<ext>` or `<app>-<profile>.<ext>`).
   */
  async appExists(commit: string, app: string): Promise<boolean> {
    if (this.#layout === 'folders') {
      const dir = await this.#repo.readTree(commit, app);
      return dir !== null && dir.size > 0;
    }
    const root = (await this.#repo.readTree(commit, '')) ?? new Map<string, TreeEntry>();
    for (const name of root.keys()) {
      const ext = EXTENSIONS_LOWEST_FIRST.find((e) => name.endsWith(e));
      if (!ext) continue;
      const base = name.slice(0, -ext.length);
      if (base === app || base.startsWith(app + '-')) return true;
    }
    return false;
  }

  /**
   * The applications at `commit`, sorted.
   */
  async listApps(commit: string): Promise<string[]> {
    const root = (await this.#repo.readTree(commit, '')) ?? new Map<string, TreeEntry>();
    const apps = new Set<string>();
    if (this.#layout === 'folders') {
      for (const [name, entry] of root) if (entry.type === 'tree' && !name.startsWith('.')) apps.add(name);
    } else {
      for (const name of root.keys()) {
        const ext = EXTENSIONS_LOWEST_FIRST.find((e) => name.endsWith(e));
        if (ext && !name.startsWith(APP_DOC)) apps.add(name.slice(0, -ext.length).split('-')[0]!);
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
    for (const layer of layerOrder(app, profiles)) {
      const base = layer.profile ? `${APP_DOC}-${layer.profile}` : APP_DOC;
      const [dir, name] =
        layer.scope === 'shared' ? ['', base]
        : this.#layout === 'folders' ? [app, base]
        : ['', layer.profile ? `${app}-${layer.profile}` : app];
      for (const ext of EXTENSIONS_LOWEST_FIRST) {
        const parsed = await this.#readDocument(commit, dir, name + ext);
        if (parsed) sources.push(...selectSources(parsed, profiles));
      }
    }
    return { app, profiles, commit, sources, merged: mergeSources(sources) };
  }

  async #readDocument(commit: string, dir: string, name: string): Promise<ParsedDocument | null> {
    const tree = await this.#repo.readTree(commit, dir);
    const entry = tree?.get(name);
    if (!entry) return null;
    const docPath = dir ? `${dir}/${name}` : name;
    const key = `${entry.oid}\0${docPath}`;
    const cached = this.#parsed.get(key);
    if (cached) return cached;
    const file = await this.#repo.readFileAt(commit, docPath);
    if (!file) return null;
    let parsed: ParsedDocument;
    try {
      parsed = parseDocument({ path: docPath, bytes: file.bytes });
    } catch (err) {
      const e = err as Error & { code?: string; data?: Record<string, unknown> };
      if (e.code === 'CFG_ERR_DOCUMENT_INVALID') throw withData(new CFG_ERR_DOCUMENT_INVALID(`${e.message} (commit ${commit})`), { ...e.data, commit });
      throw err;
    }
    this.#parsed.set(key, parsed);
    return parsed;
  }
}
