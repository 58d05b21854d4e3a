/**
 * Reads one configuration document (`.yml`, `.yaml`, `.json`, `.properties`) into
 * property sources (SPEC §2.2, §2.3).
 */
import { assembleEntries, type RawEntry } from './assemble.js';
import { documentError } from './document-error.js';
import { checkDocumentSize, DEFAULT_DOCUMENT_LIMITS, type DocumentLimits } from './limits.js';
import { readProperties } from './parse-properties.js';
import { readYaml } from './parse-yaml.js';
import { pathKey } from './paths.js';
import { compileProfileExpression } from './profiles.js';
import type { ParsedDocument, ParsedSource, PropertyEntry, PropertyValue } from './types.js';
import { isScalar, scalarText } from './values.js';

export type { ParsedDocument, ParsedSource } from './types.js';

/** The document extensions this module reads. */
export const DOCUMENT_EXTENSIONS = ['.yml', '.yaml', '.json', '.properties'] as const;

/** Activation keys of Spring Boot: the current one first, then the legacy one. */
const ON_PROFILE = pathKey(['spring', 'config', 'activate', 'on-profile']);
const LEGACY_PROFILES = pathKey(['spring', 'profiles']);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes document bytes: UTF-8 when the bytes are valid UTF-8, otherwise ISO-8859-1
 * (Spring Boot reads `.properties` this way, following JEP 226). A leading UTF-8 BOM is
 * dropped. For YAML and JSON the same rule applies (YAML requires UTF-8/16; a Latin-1
 * file is read as its bytes say rather than failing).
 */
export function decodeDocument(bytes: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    // Node's `latin1` is ISO-8859-1 proper (WHATWG's `latin1` label means windows-1252).
    text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function extensionOf(path: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash ? path.slice(dot).toLowerCase() : '';
}

/**
 * Parses one document into property sources.
 *
 * - Format by extension: `.yml`/`.yaml` (YAML 1.2 core schema, `%YAML 1.1` honoured),
 *   `.json` (same library, JSON schema), `.properties` (`java.util.Properties.load`).
 * - Each non-empty YAML document is one source. Its name is `<path>` for a file with one
 *   document and `<path> (document #i)` (0-based, empty documents not counted) otherwise,
 *   as Spring Boot names them.
 * - `spring.config.activate.on-profile` (or the older `spring.profiles`) is removed from
 *   the entries and returned as `activation` (a list of profiles, or a comma-separated
 *   string, is joined as `(a) | (b)`).
 * - An empty or comment-only document gives one source without entries (SPEC §2.3),
 *   never an error; empty documents inside a multi-document stream are skipped.
 *
 * - Bounded by `limits` ({@link DocumentLimits}): the size before anything is decoded,
 *   nesting while the YAML syntax tree is built, keys as written and after alias
 *   expansion, alias expansions, property-path depth. Time is bounded by the caller (a
 *   worker thread with a deadline, see `DocumentParserPool`).
 *
 * @param input.path - document path inside the repository (`/`-separated).
 * @param input.bytes - raw file content.
 * @param input.commit - commit the bytes were read at, copied into every origin.
 * @param input.limits - the limits in force; default {@link DEFAULT_DOCUMENT_LIMITS}.
 * @returns the sources in file order.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) with `data: { document, line, column }` for any
 *   syntax error, duplicate key, conflicting spellings, malformed profile expression or
 *   unknown extension; messages name keys and positions, never values.
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) with `data: { document, line, column |
 *   offset, limit, value }` when the document goes over one of `limits`.
 */
export function parseDocument(input: { path: string; bytes: Uint8Array; commit?: string; limits?: DocumentLimits }): ParsedDocument {
  const { path, commit } = input;
  const limits = input.limits ?? DEFAULT_DOCUMENT_LIMITS;
  checkDocumentSize(path, input.bytes.byteLength, limits);
  const text = decodeDocument(input.bytes);
  const ext = extensionOf(path);
  let documents: RawEntry[][];
  if (ext === '.properties') documents = [readProperties(text, path, commit, limits)];
  else if (ext === '.yml' || ext === '.yaml' || ext === '.json') documents = readYaml(text, path, commit, ext === '.json', limits).map((d) => d.raws);
  else throw documentError({ document: path }, `unsupported document type (expected ${DOCUMENT_EXTENSIONS.join(', ')})`);

  // SPEC §2.3: an empty or comment-only document is one empty property source.
  if (documents.length === 0) documents = [[]];
  const many = documents.length > 1;
  const sources = documents.map((raws, i): ParsedSource => {
    const entries = assembleEntries(raws);
    const { activation, rest } = takeActivation(entries, path);
    const source = { name: many ? `${path} (document #${i})` : path, entries: rest };
    return activation === undefined ? { source } : { source, activation };
  });
  return { sources };
}

function activationText(value: PropertyValue, e: PropertyEntry): string {
  const parts: string[] = [];
  const items = Array.isArray(value) ? value : [value];
  for (const item of items) {
    if (!isScalar(item)) throw documentError({ document: e.origin.document, line: e.origin.line, column: e.origin.column }, 'profile activation must be a string or a list of strings');
    // Spring binds the value to String[]: a comma-separated string is several expressions.
    for (const p of scalarText(item).split(',')) parts.push(p.trim());
  }
  if (parts.length === 0 || parts.some((p) => p === '')) {
    throw documentError({ document: e.origin.document, line: e.origin.line, column: e.origin.column }, 'malformed profile expression (empty)');
  }
  for (const p of parts) {
    try {
      compileProfileExpression(p);
    } catch {
      throw documentError({ document: e.origin.document, line: e.origin.line, column: e.origin.column }, 'malformed profile expression');
    }
  }
  return parts.length === 1 ? (parts[0] as string) : parts.map((p) => `(${p})`).join(' | ');
}

function takeActivation(entries: PropertyEntry[], document: string): { activation?: string; rest: PropertyEntry[] } {
  const current = entries.find((e) => pathKey(e.path) === ON_PROFILE);
  const legacy = entries.find((e) => pathKey(e.path) === LEGACY_PROFILES);
  if (current === undefined && legacy === undefined) return { rest: entries };
  if (current !== undefined && legacy !== undefined && current.value !== null && legacy.value !== null) {
    const o = legacy.origin;
    throw documentError({ document, line: o.line, column: o.column }, 'both spring.config.activate.on-profile and spring.profiles are set');
  }
  const chosen = current !== undefined && current.value !== null ? current : legacy;
  const rest = entries.filter((e) => e !== current && e !== legacy);
  if (chosen === undefined || chosen.value === null) return { rest };
  return { activation: activationText(chosen.value, chosen), rest };
}
