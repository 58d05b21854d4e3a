/**
 * Templates (SPEC §5.1): files under an application's `templates/` folder rendered with
 * Liquid (`liquidjs`) over the merged configuration. Pure: the templates' text and the
 * configuration are handed in; nothing here reads Git, a file system or the network.
 *
 * - Strict: a missing variable or filter is an error (`strictVariables`, `strictFilters`),
 *   never an empty string; only conditions and the `default` filter may test a key that is
 *   not there (`lenientIf`).
 * - No file system: `include`, `render` and `layout` read only the templates handed in
 *   (a `fs` over that map), by their path from the templates folder's root; `..`, absolute
 *   and empty segments name nothing. Partials are the files with a path segment starting
 *   with `_` (`_header.conf`, `_partials/db.conf`): they can be included and are not
 *   rendered on their own.
 * - Bounded: `renderTimeoutMs` (liquidjs `renderLimit`), `maxOutputBytes` (liquidjs
 *   `memoryLimit` while rendering, then the output's UTF-8 size), `maxTemplateBytes` (each
 *   file, liquidjs `parseLimit`).
 * - Errors are `CFG_ERR_TEMPLATE_INVALID` (422) naming the template file, line, column and
 *   the variable, filter, partial or bound; `CFG_ERR_SECRET_REFERENCE` (422) when a caller
 *   that may not read secrets renders a template that outputs one. Never a value.
 *
 * Data: the configuration as the JSON output's nested tree (SPEC §2.2), so `{{ db.host }}`,
 * `{{ servers[0].name }}` and `{{ labels["app.example.com/team"] }}` work; numbers are
 * numbers when JavaScript reads them back with the same digits, else their exact text.
 */
import { Drop, Liquid, type FS } from 'liquidjs';
import { CFG_ERR_SECRET_REFERENCE, CFG_ERR_TEMPLATE_INVALID, withData } from '../errors.js';
import { formatPropertyName, type NameToken } from './paths.js';
import { toTree } from './tree.js';
import type { MergedConfig, TreeValue } from './types.js';
import { isNumberLiteral } from './values.js';

/** Bounds of one rendering (`templates:` settings). */
export interface TemplateLimits {
  /** Most milliseconds one template may render. */
  readonly renderTimeoutMs: number;
  /** Largest output, bytes (UTF-8). */
  readonly maxOutputBytes: number;
  /** Largest template or partial file, bytes. */
  readonly maxTemplateBytes: number;
}

/** Default bounds (the settings' defaults). */
export const DEFAULT_TEMPLATE_LIMITS: TemplateLimits = { renderTimeoutMs: 2_000, maxOutputBytes: 1_048_576, maxTemplateBytes: 1_048_576 };

/** One template file handed to {@link renderTemplate}. */
export interface TemplateFile {
  /** Its text (UTF-8 decoded). */
  readonly text: string;
  /** Its path from the repository root, for messages (`orders/templates/nginx.conf`). */
  readonly source: string;
}

/** Whether a template path names a partial: a segment starts with `_`. Partials are only included. */
export function isPartial(path: string): boolean {
  return path.split('/').some((s) => s.startsWith('_'));
}

/** Thrown (inside liquidjs) when a caller that may not read secrets outputs one. */
class SecretAccess extends Error {
  constructor(readonly key: string) {
    super('secret');
  }
}

/** A secret the caller may not read: any use of its value refuses the rendering. */
class RefusedSecret extends Drop {
  readonly #key: string;
  constructor(key: string) {
    super();
    this.#key = key;
  }
  override valueOf(): never {
    throw new SecretAccess(this.#key);
  }
  override toString(): never {
    throw new SecretAccess(this.#key);
  }
}

/** How {@link templateData} treats `{cipher}` values. */
export interface TemplateSecrets {
  /** Whether a string is a secret (`{cipher}...`). */
  isSecret(text: string): boolean;
}

/**
 * The data a template sees: the nested tree of `config`. With `refuse`, every secret
 * (`refuse.isSecret`) becomes a value whose use refuses the rendering with
 * `CFG_ERR_SECRET_REFERENCE` naming its key (callers without `secrets:read`).
 */
export function templateData(config: MergedConfig, refuse?: TemplateSecrets): Record<string, unknown> {
  const convert = (value: TreeValue, tokens: NameToken[]): unknown => {
    if (typeof value === 'string') return refuse?.isSecret(value) === true ? new RefusedSecret(formatPropertyName(tokens)) : value;
    if (typeof value === 'boolean') return value;
    if (isNumberLiteral(value)) {
      const n = Number(value.text);
      return String(n) === value.text ? n : value.text;
    }
    if (Array.isArray(value)) return (value as readonly TreeValue[]).map((v, i) => convert(v, [...tokens, { index: i }]));
    const map = value as { readonly [k: string]: TreeValue };
    return Object.fromEntries(Object.keys(map).map((k) => [k, convert(map[k] as TreeValue, [...tokens, k])]));
  };
  return convert(toTree(config), []) as Record<string, unknown>;
}

/** The path a partial name designates (from the templates root), or `undefined` when it names nothing allowed. */
function partialPath(name: string): string | undefined {
  const segments = name.replace(/^\.\//, '').split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))) return undefined;
  return segments.join('/');
}

/** A liquidjs `fs` over the templates handed in: nothing else exists. */
function templatesFs(files: ReadonlyMap<string, TemplateFile>): FS {
  const read = (p: string): string => {
    const f = files.get(p.replace(/^\//, ''));
    if (f === undefined) throw new Error('ENOENT');
    return f.text;
  };
  return {
    exists: async (p) => files.has(p.replace(/^\//, '')),
    existsSync: (p) => files.has(p.replace(/^\//, '')),
    readFile: async (p) => read(p),
    readFileSync: read,
    resolve: (_dir, file) => `/${partialPath(file) ?? '\0'}`,
    contains: async () => true,
    containsSync: () => true,
  };
}

interface LiquidErrorLike {
  name?: string;
  message?: string;
  token?: { file?: string; input?: string; getPosition?: () => [number, number] };
  originalError?: unknown;
}

/** Strips liquidjs's `, file:..., line:.., col:..` suffix. */
function bareMessage(message: string): string {
  return message.replace(/,( file:[^,]*,)? line:\d+, col:\d+$/, '');
}

/**
 * Turns a liquidjs error into a 422 naming template, line, column and what was wrong.
 * The deepest error that has a position decides where (a partial's line, not the include's).
 */
function templateError(err: unknown, name: string, files: ReadonlyMap<string, TemplateFile>, limits: TemplateLimits): Error {
  const chain: LiquidErrorLike[] = [];
  for (let e: unknown = err; e !== null && typeof e === 'object' && chain.length < 20; e = (e as LiquidErrorLike).originalError) chain.push(e as LiquidErrorLike);
  const secret = chain.find((e): e is LiquidErrorLike & SecretAccess => e instanceof SecretAccess);
  const placed = [...chain].reverse().find((e) => e.token?.getPosition !== undefined) ?? chain[0];
  const [line, column] = placed?.token?.getPosition?.() ?? [1, 1];
  let file = files.get(name);
  const tokenFile = placed?.token?.file;
  if (tokenFile !== undefined) file = files.get(tokenFile.replace(/^\//, '')) ?? file;
  else if (placed?.token?.input !== undefined) for (const f of files.values()) if (f.text === placed.token.input) file = f;
  const where = `${file?.source ?? name}:${line}:${column}`;
  const data = { template: file?.source ?? name, line, column };
  if (secret !== undefined) {
    return withData(new CFG_ERR_SECRET_REFERENCE(`${where}: the template puts the secret at key '${secret.key}' into its output, which is served only to callers allowed secrets:read`), { ...data, kind: 'secret', key: secret.key });
  }
  const messages = chain.map((e) => bareMessage(String(e.message ?? '')));
  const variable = messages.map((m) => /^undefined variable: (.*)$/.exec(m)?.[1]).find((v) => v !== undefined);
  if (variable !== undefined) return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: undefined variable '${variable}' (no such key in the configuration)`), { ...data, kind: 'variable', key: variable });
  const filter = messages.map((m) => /^undefined filter: (.*)$/.exec(m)?.[1]).find((v) => v !== undefined);
  if (filter !== undefined) return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: undefined filter '${filter}'`), { ...data, kind: 'filter', key: filter });
  if (messages.some((m) => m.includes('render limit exceeded'))) {
    return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: rendering takes longer than templates.renderTimeoutMs = ${limits.renderTimeoutMs} ms`), { ...data, kind: 'limit', limit: 'templates.renderTimeoutMs' });
  }
  if (messages.some((m) => m.includes('memory alloc limit exceeded'))) {
    return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: the output exceeds templates.maxOutputBytes = ${limits.maxOutputBytes} bytes`), { ...data, kind: 'limit', limit: 'templates.maxOutputBytes' });
  }
  const lookup = messages.map((m) => /Failed to lookup "(.*)" in/.exec(m)?.[1]).find((v) => v !== undefined);
  if (lookup !== undefined) return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: '${lookup}' names no file of the templates folders`), { ...data, kind: 'partial', key: lookup });
  const syntax = chain.find((e) => e.name === 'ParseError' || e.name === 'TokenizationError' || e.name === 'AssertionError');
  if (syntax !== undefined) return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: syntax error: ${bareMessage(String(syntax.message ?? ''))}`), { ...data, kind: 'syntax' });
  // Any other failure: its class only (a message could quote a value).
  return withData(new CFG_ERR_TEMPLATE_INVALID(`${where}: cannot be rendered (${chain[chain.length - 1]?.name ?? 'Error'})`), { ...data, kind: 'render' });
}

/**
 * Renders template `name` of `files` over `data`.
 *
 * @param name - path from the templates folder's root (`nginx.conf`), a key of `files`
 * @param files - every file of the templates folders (partials included), by path from their root
 * @param data - from {@link templateData}
 * @returns the output text
 * @throws CFG_ERR_TEMPLATE_INVALID (422): syntax, undefined variable or filter, unknown
 *   partial, a bound crossed; CFG_ERR_SECRET_REFERENCE (422): a refused secret was used
 */
export async function renderTemplate(name: string, files: ReadonlyMap<string, TemplateFile>, data: Record<string, unknown>, limits: TemplateLimits = DEFAULT_TEMPLATE_LIMITS): Promise<string> {
  const file = files.get(name);
  if (file === undefined) throw withData(new CFG_ERR_TEMPLATE_INVALID(`${name}: no such template`), { template: name, kind: 'partial' });
  for (const f of files.values()) {
    if (Buffer.byteLength(f.text) > limits.maxTemplateBytes) {
      throw withData(new CFG_ERR_TEMPLATE_INVALID(`${f.source}:1:1: larger than templates.maxTemplateBytes = ${limits.maxTemplateBytes} bytes`), { template: f.source, line: 1, column: 1, kind: 'limit', limit: 'templates.maxTemplateBytes' });
    }
  }
  const liquid = new Liquid({
    fs: templatesFs(files),
    root: ['/'],
    partials: ['/'],
    layouts: ['/'],
    extname: '',
    relativeReference: false,
    dynamicPartials: true,
    strictVariables: true,
    // Optional keys stay possible: `{% if x %}`, `{% unless x %}` and `| default:` accept a
    // missing key (liquidjs's lenientIf); output of a missing key is still an error.
    lenientIf: true,
    strictFilters: true,
    ownPropertyOnly: true,
    cache: false,
    parseLimit: limits.maxTemplateBytes,
    renderLimit: limits.renderTimeoutMs,
    memoryLimit: limits.maxOutputBytes,
  });
  let out: string;
  try {
    out = String(await liquid.render(liquid.parse(file.text, `/${name}`), data));
  } catch (err) {
    throw templateError(err, name, files, limits);
  }
  if (Buffer.byteLength(out) > limits.maxOutputBytes) {
    throw withData(new CFG_ERR_TEMPLATE_INVALID(`${file.source}:1:1: the output exceeds templates.maxOutputBytes = ${limits.maxOutputBytes} bytes`), { template: file.source, line: 1, column: 1, kind: 'limit', limit: 'templates.maxOutputBytes' });
  }
  return out;
}
