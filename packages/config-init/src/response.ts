/**
 * Checks of config-service's answers (SPEC §7 "What is checked"): every answer must be
 * complete, from the pinned commit, of a fitting content type, valid UTF-8 (and JSON
 * where JSON is asked for), and not empty unless allowed, before anything is published.
 * Raw-file paths are validated before any file is requested.
 *
 * Pure functions over a {@link RawResponse}; each throws a final {@link FetchError}
 * (65, or 65 `CFG_INIT_ERR_UNSAFE_PATH`) naming what was wrong, never a value.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Format } from './args.js';
import { ENV_NAME_RE } from './args.js';
import { FetchError } from './errors.js';
import { MAX_BODY_BYTES, type RawResponse } from './transport.js';

/** The environment map of `exec` as the service sent it. */
export interface FetchedEnv {
  /** Variable name → value, exactly as sent. */
  env: Readonly<Record<string, string>>;
  /** `Config-Commit` of the answer. */
  commit: string;
  /** SHA-256 hex of the body (matches the `sha256` of the service's audit event). */
  sha256: string;
  /** `ETag` of the answer, if any (long-polled by `exec --watch`). */
  etag?: string | undefined;
}

/** One entry of the raw-file list. */
export interface FileEntry {
  /** Relative `/`-separated path below the application's files (validated). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** SHA-256 hex (lower case). */
  sha256: string;
}

/** One raw file, verified against its list entry. */
export interface FetchedFile {
  /** Relative `/`-separated path (validated). */
  path: string;
  /** The bytes. */
  body: Buffer;
  /** SHA-256 hex of the bytes. */
  sha256: string;
}

/** One rendered document as the service sent it. */
export interface FetchedDocument {
  /** The format asked for. */
  format: Format;
  /** The body, byte for byte. */
  body: Buffer;
  /** `Config-Commit` of the answer. */
  commit: string;
  /** `ETag` of the answer, if any. */
  etag: string | undefined;
  /** `Config-Property-Count`, if the service sent it. */
  propertyCount: number | undefined;
  /** Media type of the answer (lower case, no parameters). */
  contentType: string;
}

/** Media types requested per format (Accept), most specific first. */
export const ACCEPT: Record<Format, string> = {
  json: 'application/json',
  yaml: 'application/yaml, text/yaml;q=0.9, text/plain;q=0.5',
  properties: 'text/x-java-properties, text/plain;q=0.9',
  env: 'text/x-shellscript, text/plain;q=0.9',
  dotenv: 'text/plain',
};

/** Whether a 200 answer's media type fits the format asked for. */
export function contentTypeFits(format: Format, type: string): boolean {
  if (type === 'application/problem+json') return false;
  if (format === 'json') return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
  // Text formats: any text/* except HTML (a proxy's error page), or the yaml / shell types.
  if (type === 'text/html') return false;
  if (type.startsWith('text/')) return true;
  if (format === 'yaml') return type === 'application/yaml' || type === 'application/x-yaml';
  if (format === 'env') return type === 'application/x-sh' || type === 'application/x-shellscript';
  return false;
}

/** The first value of header `name` (lower case), if any. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The media type of an answer: `Content-Type` without parameters, lower case (`''` when absent). */
export function mediaType(headers: IncomingHttpHeaders): string {
  return (header(headers, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Strips control characters and caps the length of text taken from a server answer. */
export function clean(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** Reads `code` and `detail` (or `title`) of a problem+json body, if it is one. */
export function problemOf(res: RawResponse): { code: string | undefined; text: string } {
  const type = mediaType(res.headers);
  if (type.endsWith('json') && res.body.length < 65_536) {
    try {
      const p: unknown = JSON.parse(res.body.toString('utf8'));
      if (p !== null && typeof p === 'object') {
        const o = p as Record<string, unknown>;
        const code = typeof o.code === 'string' ? clean(o.code, 80) : undefined;
        const detail = typeof o.detail === 'string' ? o.detail : typeof o.title === 'string' ? o.title : '';
        return { code, text: clean(detail) };
      }
    } catch {
      // not a problem document; fall through
    }
  }
  return { code: undefined, text: '' };
}

/**
 * Why a raw-file path from the service cannot be published, or `null` if it can: it must
 * be relative, `/`-separated, with no empty, `.` or `..` segment, no backslash, no NUL or
 * other control character, each segment at most 255 bytes, at most 4096 bytes in all.
 */
export function filePathViolation(path: string): string | null {
  if (path === '') return 'is empty';
  if (Buffer.byteLength(path, 'utf8') > 4096) return 'is longer than 4096 bytes';
  if (path.startsWith('/')) return 'is absolute';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.includes('\0')) return 'contains NUL';
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f]/.test(path)) return 'contains a control character';
  for (const seg of path.split('/')) {
    if (seg === '') return "has an empty segment ('//' or a trailing '/')";
    if (seg === '.' || seg === '..') return "has a '.' or '..' segment";
    if (Buffer.byteLength(seg, 'utf8') > 255) return 'has a segment longer than 255 bytes';
  }
  return null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The answer's `Config-Commit`, checked against `pinned`; `undefined` when absent and not `required`. */
function checkCommit(res: RawResponse, pinned: string | undefined, bad: (what: string) => FetchError, required: boolean): string | undefined {
  const commit = header(res.headers, 'config-commit')?.trim();
  if (commit === undefined || commit === '') {
    if (required) throw bad('missing or malformed Config-Commit header');
    return undefined;
  }
  if (!/^[0-9a-f]{4,64}$/i.test(commit)) throw bad('missing or malformed Config-Commit header');
  if (pinned !== undefined && commit.toLowerCase() !== pinned.toLowerCase()) {
    throw bad(`commit ${commit} differs from the pinned commit ${pinned}`);
  }
  return commit;
}

function propertyCountOf(res: RawResponse, bad: (what: string) => FetchError): number | undefined {
  const countHeader = header(res.headers, 'config-property-count');
  if (countHeader === undefined) return undefined;
  if (!/^\d+$/.test(countHeader.trim())) throw bad('malformed Config-Property-Count header');
  return Number(countHeader.trim());
}

/**
 * Checks a 200 answer to `format=F`: commit (equal to `pinned` when set), content type,
 * UTF-8, JSON syntax for `json`, non-empty unless `allowEmpty`.
 *
 * @throws {@link FetchError} `CFG_INIT_ERR_BAD_RESPONSE` or `CFG_INIT_ERR_EMPTY_CONFIG` (65).
 */
export function checkDocument(res: RawResponse, format: Format, pinned: string | undefined, allowEmpty: boolean): FetchedDocument {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for format ${format}: ${what}`, { status: res.status });
  const commit = checkCommit(res, pinned, bad, true) ?? '';
  const type = mediaType(res.headers);
  if (!contentTypeFits(format, type)) throw bad(`unexpected Content-Type '${clean(type, 80) || '(none)'}'`);
  const propertyCount = propertyCountOf(res, bad);
  let text: string;
  try {
    text = utf8.decode(res.body);
  } catch {
    throw bad('body is not valid UTF-8');
  }
  if (format === 'json') {
    try {
      JSON.parse(text);
    } catch {
      throw bad('body is not valid JSON');
    }
  }
  // Without the header (an older service or a proxy that drops it), judge by the body.
  const empty = propertyCount !== undefined ? propertyCount === 0 : /^\s*(\{\s*\}\s*)?$/.test(text);
  if (empty && !allowEmpty) {
    throw new FetchError('CFG_INIT_ERR_EMPTY_CONFIG', `the configuration is empty (format ${format}, commit ${commit}); refusing to publish it without --allow-empty`, { status: res.status });
  }
  return { format, body: res.body, commit, etag: header(res.headers, 'etag'), propertyCount, contentType: type };
}

/**
 * Checks the answer to `format=env` with `Accept: application/json`: a JSON object of
 * environment names (SPEC §8 pattern) to string values without NUL (which no process
 * environment can hold). Never quotes a value in an error.
 *
 * @throws {@link FetchError} 65: `CFG_INIT_ERR_BAD_RESPONSE`, `CFG_INIT_ERR_UNRENDERABLE`
 *   (a NUL in a value) or `CFG_INIT_ERR_EMPTY_CONFIG`.
 */
export function checkEnvMap(res: RawResponse, pinned: string | undefined, allowEmpty: boolean): FetchedEnv {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for the environment map: ${what}`, { status: res.status });
  const commit = checkCommit(res, pinned, bad, true) ?? '';
  const type = mediaType(res.headers);
  if (type !== 'application/json') throw bad(`unexpected Content-Type '${clean(type, 80) || '(none)'}' (expected application/json; is config-service too old for exec?)`);
  const propertyCount = propertyCountOf(res, bad);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(res.body));
  } catch {
    throw bad('body is not valid UTF-8 JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('body is not a JSON object');
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  const badNames: string[] = [];
  const nonStrings: string[] = [];
  const withNul: string[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!ENV_NAME_RE.test(name)) badNames.push(clean(name, 80));
    else if (typeof value !== 'string') nonStrings.push(name);
    else if (value.includes('\0')) withNul.push(name);
    else env[name] = value;
  }
  if (badNames.length > 0) throw bad(`not an environment variable name: ${badNames.slice(0, 10).join(', ')}`);
  if (nonStrings.length > 0) throw bad(`value is not a string for ${nonStrings.slice(0, 10).join(', ')}`);
  if (withNul.length > 0) {
    throw new FetchError('CFG_INIT_ERR_UNRENDERABLE', `the configuration cannot be an environment: the value of ${withNul.slice(0, 10).join(', ')} contains NUL`, { status: res.status });
  }
  const count = Object.keys(env).length;
  const empty = propertyCount !== undefined ? propertyCount === 0 : count === 0;
  if (empty && !allowEmpty) {
    throw new FetchError('CFG_INIT_ERR_EMPTY_CONFIG', `the configuration is empty (environment map, commit ${commit}); refusing to use it without --allow-empty`, { status: res.status });
  }
  return { env, commit, sha256: createHash('sha256').update(res.body).digest('hex'), etag: header(res.headers, 'etag') };
}

/**
 * Checks the raw-file list (or, `kind` `templates`, the rendered-template list); every
 * path is validated before any file is requested.
 *
 * @returns the list's commit (header or body), its entries and its ETag.
 * @throws {@link FetchError} `CFG_INIT_ERR_BAD_RESPONSE` or `CFG_INIT_ERR_UNSAFE_PATH` (65).
 */
export function checkFileList(res: RawResponse, pinned: string | undefined, kind: 'files' | 'templates' = 'files'): { commit: string | undefined; entries: FileEntry[]; etag: string | undefined } {
  const what = kind === 'files' ? 'file' : 'template';
  const bad = (why: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for the ${what} list: ${why}`, { status: res.status });
  const headerCommit = checkCommit(res, pinned, bad, false);
  const type = mediaType(res.headers);
  if (type !== 'application/json') throw bad(`unexpected Content-Type '${clean(type, 80) || '(none)'}'`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(res.body));
  } catch {
    throw bad('body is not valid UTF-8 JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray((parsed as Record<string, unknown>)[kind])) throw bad(`body has no '${kind}' array`);
  const body = { commit: (parsed as { commit?: unknown }).commit, files: (parsed as Record<string, unknown[]>)[kind] as unknown[] };
  let commit = headerCommit;
  if (body.commit !== undefined) {
    if (typeof body.commit !== 'string' || !/^[0-9a-f]{4,64}$/i.test(body.commit)) throw bad("malformed 'commit'");
    const against = pinned ?? headerCommit;
    if (against !== undefined && body.commit.toLowerCase() !== against.toLowerCase()) throw bad(`commit ${body.commit} differs from the pinned commit ${against}`);
    commit = body.commit;
  }
  const entries: FileEntry[] = [];
  const seen = new Set<string>();
  for (const item of body.files) {
    const e = item as { path?: unknown; size?: unknown; sha256?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.path !== 'string') throw bad(`a ${what} entry has no path`);
    if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0 || e.size > MAX_BODY_BYTES) throw bad(`${what} '${clean(e.path, 200)}': bad size`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(e.sha256)) throw bad(`${what} '${clean(e.path, 200)}': bad sha256`);
    const why = filePathViolation(e.path);
    const kindName = kind === 'files' ? 'raw file' : 'template';
    if (why) throw new FetchError('CFG_INIT_ERR_UNSAFE_PATH', `refusing ${kindName} path '${clean(e.path, 200)}': it ${why}`, { status: res.status });
    if (seen.has(e.path)) throw new FetchError('CFG_INIT_ERR_UNSAFE_PATH', `refusing ${kindName} path '${clean(e.path, 200)}': it is listed twice`, { status: res.status });
    seen.add(e.path);
    entries.push({ path: e.path, size: e.size, sha256: e.sha256.toLowerCase() });
  }
  // A path that is also a folder of another (`a` and `a/b`) cannot be written.
  for (const { path } of entries) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (seen.has(parent)) throw new FetchError('CFG_INIT_ERR_UNSAFE_PATH', `refusing ${kind === 'files' ? 'raw file' : 'template'} path '${clean(path, 200)}': '${clean(parent, 200)}' is also a file`, { status: res.status });
    }
  }
  return { commit, entries, etag: header(res.headers, 'etag') };
}

/**
 * Checks one raw file against its list entry (size and SHA-256, and the commit when sent).
 *
 * @throws {@link FetchError} `CFG_INIT_ERR_BAD_RESPONSE` (65).
 */
export function checkFile(res: RawResponse, entry: FileEntry, pinned: string | undefined, kind: 'files' | 'templates' = 'files'): FetchedFile {
  const bad = (what: string): FetchError =>
    new FetchError('CFG_INIT_ERR_BAD_RESPONSE', `bad response for ${kind === 'files' ? 'file' : 'template'} '${clean(entry.path, 200)}': ${what}`, { status: res.status });
  checkCommit(res, pinned, bad, false);
  if (mediaType(res.headers) === 'application/problem+json') throw bad("unexpected Content-Type 'application/problem+json'");
  if (res.body.length !== entry.size) throw bad(`size ${res.body.length} differs from the listed ${entry.size}`);
  const sha = createHash('sha256').update(res.body).digest('hex');
  if (sha !== entry.sha256) throw bad(`sha256 ${sha} differs from the listed ${entry.sha256}`);
  return { path: entry.path, body: res.body, sha256: sha };
}

