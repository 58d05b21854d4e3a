/**
 * `config-service validate <repo-dir>` (SPEC §2, §2.4, §9): checks a configuration
 * repository from its working tree, before anything is merged or served, the way the
 * service would read it. Meant for the configuration repository's CI, on a checkout.
 *
 * The working tree is read through {@link DirectorySource} (`directory-source.ts`), which offers the same
 * `readTree`/`readFileAt`/`listFiles` as `GitRepository`, so documents are found,
 * parsed, selected and merged by the service's own `AppConfigReader`, and then go
 * through the service's own `resolvePlaceholders`, schema check and `render`.
 */
import { AppConfigReader, type DocumentParser, type Layout } from '../config/app-config.js';
import { coercePropertiesValues } from '../config/coerce.js';
import { EXTENSIONS_LOWEST_FIRST } from '../config/merge.js';
import { parseDocument, type ParsedDocument } from '../config/parse.js';
import { resolvePlaceholders, type PlaceholderError } from '../config/placeholders.js';
import { render } from '../config/render.js';
import { findSchemaViolations, type AppSchema } from '../config/schema.js';
import { flatten } from '../config/tree.js';
import type { MergedConfig, Origin } from '../config/types.js';
import { secretFindings, type KnownKeys } from '../config/validate-secrets.js';
import { templateProblems } from '../config/validate-templates.js';
import type { TreeEntry } from '../git/repository.js';
import { DirectorySource } from './directory-source.js';

// ---------------------------------------------------------------- findings

/** Severity of a finding: errors fail the check, warnings do not. */
export type Severity = 'error' | 'warning';

/** One problem found. Messages name files, lines and keys, never a value. */
export interface Finding {
  /** Path relative to the repository root, `/`-separated. */
  readonly file: string;
  /** 1-based; 1 when the finding is about the whole file. */
  readonly line: number;
  readonly column: number;
  readonly severity: Severity;
  /**
   * What was checked: `document` (parse, duplicate keys, conflicting spellings),
   * `layer` (several extensions), `placeholder`, `schema`, `env-name`, `entry`
   * (symlinks, LFS pointers), `resource` (spring layout: a non-map `.json`), `secret`
   * (`{cipher}` values: malformed, unbound, bound to another application), `limit` (a
   * document over one of the `documents:` limits), `routing` (an application another
   * repository serves), `template` (a template of `templates/**` that does not render).
   */
  readonly check: 'document' | 'layer' | 'placeholder' | 'schema' | 'env-name' | 'entry' | 'resource' | 'secret' | 'limit' | 'routing' | 'template';
  readonly message: string;
  /** The requests this was found for (`orders`, `orders/dev`), sorted; empty for per-file checks. */
  readonly contexts: readonly string[];
}

/** Options of {@link validateRepository}. */
export interface ValidateOptions {
  /** The repository layout (SPEC §2); `folders` by default. */
  readonly layout?: Layout;
  /**
   * Profiles to check. Default: every profile the repository names (in file names
   * `application-<p>`, `<app>-<p>`, `files-<p>` and in activation expressions), each on
   * its own. When given, each one on its own and, for more than one, all together in the
   * order given.
   */
  readonly profiles?: readonly string[];
  /**
   * Severity of a placeholder whose key has no value and no default. Default: `error`
   * for `folders`; `warning` for `spring`, whose documents are written for Spring clients
   * that resolve placeholders themselves against their own environment (`${PREFIX:}`,
   * `${vcap.services...}`, `${spring.application.name}`), and whose Spring endpoint
   * serves them unresolved. Cycles are always errors.
   */
  readonly unresolved?: Severity;
  /**
   * Severity of an unbound (version-1) `{cipher}` value. Default `warning`; `error` for a
   * repository served with `secrets.requireBinding: true`.
   */
  readonly unboundSecrets?: Severity;
  /**
   * Several repositories (SPEC §4): why the service would not serve `app` from this
   * repository (another entry claims it, none does), or `undefined` when it would. Such an
   * application gets one `routing` warning and no further per-application checks.
   */
  readonly notServed?: (app: string) => string | undefined;
  /**
   * The document parser: the service's limits and worker threads
   * (`DocumentParserPool.parse`). Default: `parseDocument` with the default limits, on
   * this thread. Each document is parsed once.
   */
  readonly parse?: DocumentParser;
  /**
   * The service's keys (`--public-key id=file`, `--config`'s `secrets.keys`): with them,
   * every `{cipher}` value must name one of their ids and be a readable envelope of it
   * (`validate-secrets.ts`). Absent: envelopes that cannot be read are warnings, key ids
   * are not checked.
   */
  readonly keys?: KnownKeys;
}

/** Codes of errors that are findings about one document. */
const DOCUMENT_ERROR_CHECKS: Readonly<Record<string, Finding['check']>> = {
  CFG_ERR_DOCUMENT_INVALID: 'document',
  CFG_ERR_DOCUMENT_LIMIT_EXCEEDED: 'limit',
};

/** The result of {@link validateRepository}. */
export interface ValidationReport {
  /** Sorted by file, line, column, then message. */
  readonly findings: readonly Finding[];
  readonly errors: number;
  readonly warnings: number;
  /** Documents parsed (each file once). */
  readonly documents: number;
  /** Schema files found (`<app>/schema.json`, `<app>.schema.json`). */
  readonly schemas: number;
  readonly applications: readonly string[];
  /** Profile sets checked per application; `[]` (no profile) is always first. */
  readonly profileSets: ReadonlyArray<readonly string[]>;
}

const WORKTREE = 'worktree';
const APP_DOC = 'application';
const SPRING_SCHEMA_SUFFIX = '.schema.json';

function extensionOf(name: string): (typeof EXTENSIONS_LOWEST_FIRST)[number] | undefined {
  return EXTENSIONS_LOWEST_FIRST.find((e) => name.endsWith(e));
}

interface ErrorWithData extends Error {
  code?: string;
  data?: { document?: string; line?: number; column?: number; keys?: string[] };
}

/** Drops the `<document>:<line>:<column>: ` prefix of a document error's message. */
function stripLocation(message: string, file: string): string {
  if (!message.startsWith(file)) return message;
  const m = /^(?::\d+:\d+)?(?: \(commit [^)]*\))?: /.exec(message.slice(file.length));
  return m === null ? message : message.slice(file.length + m[0].length);
}

class Findings {
  readonly #byKey = new Map<string, { finding: Omit<Finding, 'contexts'>; contexts: Set<string> }>();

  add(f: Omit<Finding, 'contexts' | 'line' | 'column'> & { line?: number | undefined; column?: number | undefined }, context?: string): void {
    const finding = { file: f.file, line: f.line ?? 1, column: f.column ?? 1, severity: f.severity, check: f.check, message: f.message };
    const key = JSON.stringify([finding.file, finding.line, finding.column, finding.severity, finding.message]);
    let slot = this.#byKey.get(key);
    if (slot === undefined) {
      slot = { finding, contexts: new Set() };
      this.#byKey.set(key, slot);
    }
    if (context !== undefined) slot.contexts.add(context);
  }

  has(file: string): boolean {
    for (const s of this.#byKey.values()) if (s.finding.file === file) return true;
    return false;
  }

  list(): Finding[] {
    return [...this.#byKey.values()]
      .map((s) => ({ ...s.finding, contexts: [...s.contexts].sort() }))
      .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0)));
  }
}

/** Profile names in an activation expression (`prod & !eu` → `prod`, `eu`). */
function expressionProfiles(expression: string): string[] {
  return expression.split(/[()&|!]/).map((t) => t.trim()).filter((t) => t !== '');
}

/** Origins of flattened names (`a.b`, `list[0].host`). */
function originsOfNames(config: MergedConfig): Map<string, Origin> {
  const out = new Map<string, Origin>();
  for (const [k, p] of config) for (const [name] of flatten(new Map([[k, p]]))) if (!out.has(name)) out.set(name, p.origin);
  return out;
}

function contextName(app: string, profiles: readonly string[]): string {
  return profiles.length === 0 ? app : `${app}/${profiles.join(',')}`;
}

/**
 * Checks a configuration repository's working tree (SPEC §9 `validate`).
 *
 * Checks, each reported as a {@link Finding}:
 * - every document of the layout parses (`.yml`, `.yaml`, `.json`, `.properties`):
 *   syntax, duplicate keys, two spellings of one path, profile expressions (error);
 * - every document stays within the `documents:` limits (bytes, nesting, keys, alias
 *   expansions; with a worker parser also time and memory): error, check `limit`;
 * - symlinks and LFS pointers where a document, schema or raw file is read (error);
 * - a layer with several extensions (`application.yml` + `application.properties`):
 *   warning on each lower one (`.properties` beats `.yml` beats `.yaml` beats `.json`);
 * - for every application × profile set: placeholders resolve (a missing key: see
 *   {@link ValidateOptions.unresolved}; a cycle: error), the schema holds (error; only
 *   checked when every placeholder resolved), environment names do not collide and every
 *   value can be an environment variable (`render(..., 'env')`, error), and every
 *   template of `templates/**` renders (`validate-templates.ts`; error, check `template`,
 *   at the template's file, line and column);
 * - every `{cipher}` value (`validate-secrets.ts`): a value bound to another application
 *   (error), an envelope this service cannot read (warning), an unbound version-1 value
 *   (see {@link ValidateOptions.unboundSecrets});
 * - `spring` layout only: a root `.json` file whose top level is not an object is a
 *   warning (Spring Cloud Config serves such files as plain-text resources; requests for
 *   its application's configuration fail with 422).
 *
 * @param dir - the repository's working tree (`.git` not needed).
 * @param options - layout, profiles, severity of unresolved placeholders.
 * @returns the findings and counts. Problems in the repository are findings, never thrown.
 * @throws Error when `dir` cannot be read (not found, not a directory, permissions).
 */
export async function validateRepository(dir: string, options: ValidateOptions = {}): Promise<ValidationReport> {
  const layout = options.layout ?? 'folders';
  const unresolved: Severity = options.unresolved ?? (layout === 'spring' ? 'warning' : 'error');
  const unboundSecrets: Severity = options.unboundSecrets ?? 'warning';
  const source = await DirectorySource.open(dir);
  // One parse per document, shared by the per-file check below and the reader.
  const parseOnce = options.parse ?? (async (input) => parseDocument(input));
  const parses = new Map<string, Promise<ParsedDocument>>();
  const parse: DocumentParser = (input) => {
    let p = parses.get(input.path);
    if (p === undefined) {
      p = parseOnce(input);
      parses.set(input.path, p);
    }
    return p;
  };
  const reader = new AppConfigReader(source, layout, { parse });
  const findings = new Findings();

  // --- the documents and schemas of the layout
  const root = (await source.readTree(WORKTREE, '')) ?? new Map<string, TreeEntry>();
  const documents: string[] = [];
  const schemas: string[] = [];
  const rawFolders: string[] = [];
  const profileNames = new Set<string>();
  const profileOf = (base: string, prefix: string): void => {
    if (base.startsWith(`${prefix}-`) && base.length > prefix.length + 1) profileNames.add(base.slice(prefix.length + 1));
  };
  const apps = await reader.listApps(WORKTREE);
  if (layout === 'folders') {
    for (const name of root.keys()) {
      const ext = extensionOf(name);
      if (ext !== undefined && (name === `${APP_DOC}${ext}` || name.startsWith(`${APP_DOC}-`))) {
        documents.push(name);
        profileOf(name.slice(0, -ext.length), APP_DOC);
      }
    }
    for (const app of apps) {
      for (const [name, entry] of (await source.readTree(WORKTREE, app)) ?? new Map<string, TreeEntry>()) {
        const ext = extensionOf(name);
        if (name === 'schema.json') schemas.push(`${app}/${name}`);
        else if (ext !== undefined && (name === `${APP_DOC}${ext}` || name.startsWith(`${APP_DOC}-`))) {
          documents.push(`${app}/${name}`);
          profileOf(name.slice(0, -ext.length), APP_DOC);
        } else if (entry.type === 'tree' && (name === 'files' || name.startsWith('files-'))) {
          rawFolders.push(`${app}/${name}`);
          profileOf(name, 'files');
        }
      }
    }
  } else {
    for (const name of root.keys()) {
      const ext = extensionOf(name);
      if (ext === undefined) continue;
      if (name.endsWith(SPRING_SCHEMA_SUFFIX)) {
        schemas.push(name);
        continue;
      }
      documents.push(name);
      const base = name.slice(0, -ext.length);
      if (base.startsWith(`${APP_DOC}-`)) profileOf(base, APP_DOC);
      else if (!base.startsWith(APP_DOC)) {
        const app = base.split('-')[0] as string;
        profileOf(base, app);
      }
    }
  }

  // --- templates folders name profiles too (`<app>/templates-<profile>`, both layouts)
  for (const app of apps) {
    for (const [name, entry] of (await source.readTree(WORKTREE, app)) ?? new Map<string, TreeEntry>()) {
      if (entry.type === 'tree' && name.startsWith('templates-')) profileOf(name, 'templates');
    }
  }

  // --- parse every document once
  const parsedDocuments = new Map<string, ParsedDocument>();
  for (const path of documents.sort()) {
    let file: { bytes: Uint8Array } | null;
    try {
      file = await source.readFileAt(WORKTREE, path);
    } catch (err) {
      findings.add({ file: path, severity: 'error', check: 'entry', message: (err as Error).message });
      continue;
    }
    if (file === null) continue;
    if (layout === 'spring' && path.endsWith('.json') && !path.includes('/')) {
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(file.bytes).toString('utf8'));
      } catch {
        json = {};
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        const app = path.slice(0, -'.json'.length).split('-')[0] as string;
        findings.add({
          file: path,
          severity: 'warning',
          check: 'resource',
          message: `the top level is not an object, so this is no configuration document: Spring Cloud Config serves such a file only as a plain-text resource, and configuration requests for application '${app}' fail with 422 here`,
        });
        continue;
      }
    }
    try {
      const parsed = await parse({ path, bytes: file.bytes });
      parsedDocuments.set(path, parsed);
      for (const f of secretFindings(path, parsed, layout, options.keys)) {
        findings.add({ file: path, line: f.line, column: f.column, severity: f.severity === 'unbound' ? unboundSecrets : f.severity, check: 'secret', message: f.message });
      }
      for (const s of parsed.sources) if (s.activation !== undefined) for (const p of expressionProfiles(s.activation)) profileNames.add(p);
    } catch (err) {
      const e = err as ErrorWithData;
      const check = DOCUMENT_ERROR_CHECKS[e.code ?? ''];
      if (check === undefined) throw err;
      findings.add({ file: path, line: e.data?.line, column: e.data?.column, severity: 'error', check, message: stripLocation(e.message, path) });
    }
  }

  // --- several extensions in one layer
  const byLayer = new Map<string, string[]>();
  for (const path of documents) {
    const ext = extensionOf(path) as string;
    const layer = path.slice(0, -ext.length);
    byLayer.set(layer, [...(byLayer.get(layer) ?? []), path]);
  }
  const rank = (p: string): number => EXTENSIONS_LOWEST_FIRST.indexOf(extensionOf(p) as (typeof EXTENSIONS_LOWEST_FIRST)[number]);
  for (const paths of byLayer.values()) {
    if (paths.length < 2) continue;
    const ordered = [...paths].sort((a, b) => rank(b) - rank(a));
    for (const lower of ordered.slice(1)) {
      const higher = ordered.filter((p) => rank(p) > rank(lower)).map((p) => p.slice(p.lastIndexOf('/') + 1));
      findings.add({
        file: lower,
        severity: 'warning',
        check: 'layer',
        message: `one layer has several documents: ${higher.join(' and ')} ${higher.length === 1 ? 'overrides' : 'override'} this one path by path (.properties beats .yml beats .yaml beats .json, Spring Boot's order)`,
      });
    }
  }

  // --- raw files: symlinks are never served
  for (const folder of rawFolders.sort()) {
    for (const f of await source.listFiles(WORKTREE, folder)) {
      if (f.type !== 'blob') findings.add({ file: f.path, severity: 'error', check: 'entry', message: 'a symbolic link; symbolic links are never followed or served' });
    }
  }

  // --- profile sets
  let profileSets: string[][];
  if (options.profiles !== undefined && options.profiles.length > 0) {
    const given = options.profiles.filter((p, i) => options.profiles?.indexOf(p) === i);
    profileSets = [[], ...given.map((p) => [p])];
    if (given.length > 1) profileSets.push([...given]);
  } else {
    profileSets = [[], ...[...profileNames].sort().map((p) => [p])];
  }

  // --- applications this repository does not serve (several repositories)
  const served = apps.filter((app) => {
    const why = options.notServed?.(app);
    if (why !== undefined) findings.add({ file: app, severity: 'warning', check: 'routing', message: why });
    return why === undefined;
  });

  // --- schemas
  const schemaByApp = new Map<string, AppSchema | null>();
  for (const app of served) {
    try {
      schemaByApp.set(app, await reader.readSchema(WORKTREE, app));
    } catch (err) {
      schemaByApp.set(app, null);
      const e = err as ErrorWithData;
      const file = layout === 'folders' ? `${app}/schema.json` : `${app}${SPRING_SCHEMA_SUFFIX}`;
      const m = /^[^:]*(?::(\d+):(\d+))?: /.exec(e.message);
      findings.add({ file, line: m?.[1] === undefined ? undefined : Number(m[1]), column: m?.[2] === undefined ? undefined : Number(m[2]), severity: 'error', check: e.code === 'CFG_ERR_UNSUPPORTED_ENTRY' ? 'entry' : 'schema', message: stripLocation(e.message, file) });
    }
  }

  // --- every application × profile set, through the service's own reader
  for (const app of served) {
    for (const profiles of profileSets) {
      const context = contextName(app, profiles);
      let merged: MergedConfig;
      try {
        merged = (await reader.read(WORKTREE, app, profiles)).merged;
      } catch (err) {
        const e = err as ErrorWithData;
        if (e.code === 'CFG_ERR_APP_NOT_FOUND') break;
        if (e.code === 'CFG_ERR_DOCUMENT_INVALID' || e.code === 'CFG_ERR_DOCUMENT_LIMIT_EXCEEDED' || e.code === 'CFG_ERR_UNSUPPORTED_ENTRY') {
          // Reported above with the document; only add it when it was not.
          const file = e.data?.document;
          if (file !== undefined && !findings.has(file)) findings.add({ file, line: e.data?.line, column: e.data?.column, severity: 'error', check: DOCUMENT_ERROR_CHECKS[e.code] ?? 'document', message: stripLocation(e.message, file) }, context);
          continue;
        }
        throw err;
      }

      let placeholderProblems = 0;
      const resolved = resolvePlaceholders(merged, {
        onError: (pe: PlaceholderError) => {
          placeholderProblems++;
          const severity: Severity = pe.data.kind === 'missing' ? unresolved : 'error';
          findings.add({ file: pe.data.document, line: pe.data.line, column: pe.data.column, severity, check: 'placeholder', message: stripLocation(pe.message, pe.data.document) }, context);
        },
      });

      const schema = schemaByApp.get(app) ?? null;
      if (schema !== null && placeholderProblems === 0) {
        try {
          for (const v of findSchemaViolations(coercePropertiesValues(resolved, schema), schema)) {
            const at = v.origin ?? { document: schema.path };
            findings.add({ file: at.document, line: at.line, column: at.column, severity: 'error', check: 'schema', message: `violates ${schema.path} at '${v.key === '' ? '(root)' : v.key}': ${v.rule}` }, context);
          }
        } catch (err) {
          const e = err as ErrorWithData;
          findings.add({ file: schema.path, severity: 'error', check: 'schema', message: stripLocation(e.message, schema.path) });
          schemaByApp.set(app, null);
        }
      }

      try {
        render(resolved, 'env');
      } catch (err) {
        const e = err as ErrorWithData;
        if (e.code !== 'CFG_ERR_UNRENDERABLE') throw err;
        const keys = e.data?.keys ?? [];
        const origin = originsOfNames(resolved).get(keys[keys.length - 1] ?? '');
        findings.add({ file: origin?.document ?? contextName(app, []), line: origin?.line, column: origin?.column, severity: 'error', check: 'env-name', message: e.message }, context);
      }

      // Templates render over the resolved configuration; a placeholder problem is reported above.
      if (placeholderProblems === 0) {
        for (const t of await templateProblems(reader, source, WORKTREE, app, profiles, resolved)) findings.add({ ...t, severity: 'error' }, context);
      }
    }
  }

  const list = findings.list();
  return {
    findings: list,
    errors: list.filter((f) => f.severity === 'error').length,
    warnings: list.filter((f) => f.severity === 'warning').length,
    documents: documents.length,
    schemas: schemas.length,
    applications: apps,
    profileSets,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Formats a report.
 *
 * - `text`: one line per finding, GCC style, `file:line:column: error|warning: message`
 *   (file relative to the repository root; line and column 1 for whole-file findings),
 *   followed by ` [in orders, orders/dev]` for checks made per request (at most three
 *   named, then `and N more`); then one summary line:
 *   `1 error, 2 warnings; checked 20 documents, 12 applications, 7 profile sets`.
 * - `json`: `{ ok, errors, warnings, documents, applications, profileSets, findings }`,
 *   2-space indented, trailing newline.
 *
 * @returns the text to print (ends with a newline).
 */
export function formatReport(report: ValidationReport, format: 'text' | 'json'): string {
  if (format === 'json') {
    const { findings, errors, warnings, documents, applications, profileSets } = report;
    return `${JSON.stringify({ ok: errors === 0, errors, warnings, documents, applications, profileSets, findings }, null, 2)}\n`;
  }
  let out = '';
  for (const f of report.findings) {
    let contexts = '';
    if (f.contexts.length > 0) {
      const shown = f.contexts.slice(0, 3).join(', ');
      contexts = f.contexts.length > 3 ? ` [in ${shown} and ${f.contexts.length - 3} more]` : ` [in ${shown}]`;
    }
    out += `${f.file}:${f.line}:${f.column}: ${f.severity}: ${f.message}${contexts}\n`;
  }
  out += `${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}; checked ${plural(report.documents, 'document')}, ${plural(report.applications.length, 'application')}, ${plural(report.profileSets.length, 'profile set')}\n`;
  return out;
}
