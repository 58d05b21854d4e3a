/**
 * The entry of a document-parsing worker thread (run by `DocumentParserPool` through
 * piscina): {@link parseDocument} on bytes handed over by the main thread. Pure like the
 * rest of `src/config/`: no I/O, no state between tasks.
 */
import type { DocumentLimits } from './limits.js';
import { parseDocument } from './parse.js';
import type { ParsedDocument } from './types.js';

/** One parse task (structured-cloned into the worker). */
export interface ParseTask {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly commit?: string;
  readonly limits: DocumentLimits;
}

/**
 * The answer of a task. Document errors travel as plain data (a thrown error loses its
 * `code` and `data` when cloned between threads) and are rebuilt by the pool.
 */
export type ParseOutcome =
  | { readonly ok: true; readonly document: ParsedDocument }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string; readonly data: Record<string, unknown> } };

/**
 * Parses one document.
 * @returns the parsed document, or the document error (`CFG_ERR_*` code, message, data).
 * @throws anything that is not a `CFG_ERR_*` error (a bug), which fails the task.
 */
export default function parseInWorker(task: ParseTask): ParseOutcome {
  try {
    return { ok: true, document: parseDocument(task) };
  } catch (err) {
    const e = err as Error & { code?: string; data?: Record<string, unknown> };
    if (typeof e.code === 'string' && e.code.startsWith('CFG_ERR_')) return { ok: false, error: { code: e.code, message: e.message, data: e.data ?? {} } };
    throw err;
  }
}
