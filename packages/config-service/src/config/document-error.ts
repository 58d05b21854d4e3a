/**
 * The one way a document error is made, so every message has the same shape:
 * `<document>:<line>:<column>: <what>` and never a configuration value.
 */
import { CFG_ERR_DOCUMENT_INVALID, withData } from '../errors.js';

/** Position of a problem inside a document (1-based line and column). */
export interface DocumentPosition {
  readonly document: string;
  readonly line?: number;
  readonly column?: number;
}

/**
 * Makes a `CFG_ERR_DOCUMENT_INVALID` (HTTP 422) error.
 *
 * @param at - document path and, when known, 1-based line and column.
 * @param what - description naming keys only (callers must never pass values).
 * @returns the error with `data: { document, line, column }`; the caller adds `commit`.
 */
export function documentError(at: DocumentPosition, what: string): Error & { data: Record<string, unknown> } {
  const where = at.line === undefined ? at.document : `${at.document}:${at.line}:${at.column ?? 1}`;
  return withData(new CFG_ERR_DOCUMENT_INVALID(`${where}: ${what}`), {
    document: at.document,
    ...(at.line === undefined ? {} : { line: at.line, column: at.column ?? 1 }),
  });
}

/** Quotes a key name for a message (JSON string syntax, so control characters stay visible). */
export function quoteKey(key: string): string {
  return JSON.stringify(key);
}
