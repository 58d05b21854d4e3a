/**
 * Bounds on one configuration document, so that no file in a repository can exhaust the
 * service's memory or hold its event loop (SPEC §2.3; issue 7). The values come from the
 * `documents:` settings; this module only names them and makes their errors.
 */
import { CFG_ERR_DOCUMENT_LIMIT_EXCEEDED, withData } from '../errors.js';

/**
 * Limits applied while one document (one file) is read. Every count is per file: the
 * documents of a multi-document YAML file count together.
 */
export interface DocumentLimits {
  /** Most bytes in one file, checked before anything is decoded or parsed. */
  readonly maxBytes: number;
  /**
   * Most levels of nesting: maps and lists inside each other (checked on the YAML syntax
   * tree as it is built, before the `yaml` composer recurses), and the levels of one
   * property path (`a.b[0].c` is 4: map keys, dotted segments and list indices).
   */
  readonly maxDepth: number;
  /**
   * Most keys in one file: map keys plus list items (a Spring property source names each
   * list item as a key, `hosts[0]`). Counted as written, and again after aliases and merge
   * keys are expanded; a `.properties` file counts its key lines.
   */
  readonly maxKeys: number;
  /** Most alias expansions (`*name`, `<<: *name`) in one file, each time one is followed. */
  readonly maxAliases: number;
}

/** The limits the settings default to (see docs/configuration.md, "Limits"). */
export const DEFAULT_DOCUMENT_LIMITS: DocumentLimits = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 64,
  maxKeys: 100_000,
  maxAliases: 1_000,
});

/** A limit's name: one of {@link DocumentLimits}, or a limit of the parse worker. */
export type DocumentLimitName = keyof DocumentLimits | 'parseTimeoutMs' | 'workerMemoryMb';

/** Where a limit was crossed: 1-based line and column, or a byte offset (0-based). */
export interface LimitPosition {
  readonly document: string;
  readonly line?: number;
  readonly column?: number;
  readonly offset?: number;
}

/**
 * Makes a `CFG_ERR_DOCUMENT_LIMIT_EXCEEDED` (HTTP 422) error.
 *
 * The message is `<document>[:<line>:<column>]: <what> exceeds documents.<limit> = <value> <more>`;
 * it names keys at most, never a value.
 *
 * @param at - the document and where the limit was crossed.
 * @param limit - which limit (its setting is `documents.<limit>`).
 * @param value - the limit's value in force.
 * @param what - what went over it (`nesting`, `17825792 bytes` ...).
 * @param more - optional text after the limit (`(alias bomb?)`).
 * @param factor - for a bound derived from the setting: the message says
 *   `<factor> × documents.<limit> = <factor × value>`.
 * @returns the error with `data: { document, line?, column?, offset?, limit, value }`
 *   (`limit` is the setting's path); the caller adds `commit`.
 */
export function limitError(at: LimitPosition, limit: DocumentLimitName, value: number, what: string, more = '', factor = 1): Error & { data: Record<string, unknown> } {
  const where = at.line === undefined ? at.document : `${at.document}:${at.line}:${at.column ?? 1}`;
  const setting = `documents.${limit}`;
  const bound = factor === 1 ? `${setting} = ${value}` : `${factor} × ${setting} = ${factor * value}`;
  return withData(new CFG_ERR_DOCUMENT_LIMIT_EXCEEDED(`${where}: ${what} exceeds ${bound}${more === '' ? '' : ` ${more}`}`), {
    document: at.document,
    ...(at.line === undefined ? {} : { line: at.line, column: at.column ?? 1 }),
    ...(at.offset === undefined ? {} : { offset: at.offset }),
    limit: setting,
    value,
  });
}

/**
 * Checks the size of a file before it is decoded.
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) when `size` exceeds `limits.maxBytes`;
 *   the limit is crossed at byte offset `maxBytes` (0-based).
 */
export function checkDocumentSize(document: string, size: number, limits: Pick<DocumentLimits, 'maxBytes'>): void {
  if (size > limits.maxBytes) {
    throw limitError({ document, offset: limits.maxBytes }, 'maxBytes', limits.maxBytes, `${size} bytes`, `(crossed at byte offset ${limits.maxBytes})`);
  }
}
