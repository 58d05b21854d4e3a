/**
 * Parses configuration documents without holding the event loop (issue 7): small ones on
 * the calling thread, large ones in a pool of worker threads (piscina) with a deadline
 * and a heap limit, so one application's cold read of a big file never stalls another's,
 * and no file can take the process down.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Piscina } from 'piscina';
import type { DocumentParser } from './config/app-config.js';
import { checkDocumentSize, limitError, type DocumentLimits } from './config/limits.js';
import { parseDocument } from './config/parse.js';
import type { ParseOutcome, ParseTask } from './config/parse-worker.js';
import type { ParsedDocument } from './config/types.js';
import { CFG_ERR_DOCUMENT_INVALID, CFG_ERR_DOCUMENT_LIMIT_EXCEEDED, withData } from './errors.js';

/** Options of {@link DocumentParserPool}: the `documents:` settings. */
export interface DocumentParserOptions extends DocumentLimits {
  /** Deadline of one worker parse, ms, waiting for a free worker included. */
  readonly parseTimeoutMs: number;
  /** Documents of at most this many bytes are parsed on the calling thread. */
  readonly workerThresholdBytes: number;
  /** Most worker threads (started on demand, stopped after a minute idle). */
  readonly workers: number;
  /** Heap limit of one worker thread, MiB (V8 old generation). */
  readonly workerMemoryMb: number;
}

/** Counters of a {@link DocumentParserPool}. */
export interface DocumentParserStats {
  /** Parses handed to a worker (finished or not). */
  readonly workerParses: number;
  /** Worker parses running or waiting for a worker now. */
  readonly inFlight: number;
  /** Worker parses stopped at `parseTimeoutMs`. */
  readonly timeouts: number;
  /** Worker parses stopped at `workerMemoryMb`. */
  readonly outOfMemory: number;
}

/** How long an idle worker thread is kept, ms. */
const IDLE_TIMEOUT_MS = 60_000;

const DOCUMENT_ERRORS = {
  CFG_ERR_DOCUMENT_INVALID,
  CFG_ERR_DOCUMENT_LIMIT_EXCEEDED,
} as const;

/** Rebuilds a document error that crossed the thread boundary as data. */
function rebuildError(error: { code: string; message: string; data: Record<string, unknown> }): Error {
  const Ctor = DOCUMENT_ERRORS[error.code as keyof typeof DOCUMENT_ERRORS];
  if (Ctor !== undefined) return withData(new Ctor(error.message), error.data);
  return Object.assign(new Error(error.message), { code: error.code, data: error.data });
}

/**
 * The document parser of a service (and of `config-service validate`).
 *
 * - Every document is first checked against `maxBytes` (nothing is copied or decoded
 *   when it is too large).
 * - Up to `workerThresholdBytes`, it is parsed on the calling thread (a few milliseconds;
 *   a worker round trip would cost more than it saves).
 * - Larger documents go to a worker thread with the same limits, a deadline
 *   (`parseTimeoutMs`: an overrunning worker is terminated) and a heap limit
 *   (`workerMemoryMb`: a worker out of memory dies alone).
 */
export class DocumentParserPool {
  readonly #options: DocumentParserOptions;
  readonly #limits: DocumentLimits;
  readonly #logger: FastifyBaseLogger | undefined;
  #pool: Piscina<ParseTask, ParseOutcome> | undefined;
  #closed = false;
  #workerParses = 0;
  #inFlight = 0;
  #timeouts = 0;
  #outOfMemory = 0;

  /**
   * @param options - the `documents:` settings.
   * @param logger - for one line per worker parse (debug) and per stopped worker (warn).
   */
  constructor(options: DocumentParserOptions, logger?: FastifyBaseLogger) {
    this.#options = options;
    this.#limits = { maxBytes: options.maxBytes, maxDepth: options.maxDepth, maxKeys: options.maxKeys, maxAliases: options.maxAliases };
    this.#logger = logger;
  }

  /** The limits every parse applies. */
  get limits(): DocumentLimits {
    return this.#limits;
  }

  /** Counters (for metrics and tests). */
  get stats(): DocumentParserStats {
    return { workerParses: this.#workerParses, inFlight: this.#inFlight, timeouts: this.#timeouts, outOfMemory: this.#outOfMemory };
  }

  /**
   * Parses one document ({@link parseDocument} with this pool's limits).
   *
   * @throws CFG_ERR_DOCUMENT_INVALID (422) as `parseDocument` does.
   * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) over a limit of `parseDocument`, or when
   *   the worker overran `parseTimeoutMs` or `workerMemoryMb` (message: file, setting, value).
   * @throws Error when the pool is closed.
   */
  readonly parse: DocumentParser = async ({ path, bytes, commit }) => {
    checkDocumentSize(path, bytes.byteLength, this.#limits);
    if (bytes.byteLength <= this.#options.workerThresholdBytes) return parseDocument({ path, bytes, limits: this.#limits, ...(commit !== undefined && { commit }) });
    return this.#parseInWorker({ path, bytes, limits: this.#limits, ...(commit !== undefined && { commit }) });
  };

  async #parseInWorker(task: ParseTask): Promise<ParsedDocument> {
    if (this.#closed) throw new Error('the document parser is closed');
    const { parseTimeoutMs, workerMemoryMb } = this.#options;
    this.#pool ??= new Piscina<ParseTask, ParseOutcome>({
      filename: new URL('./config/parse-worker.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: this.#options.workers,
      idleTimeout: IDLE_TIMEOUT_MS,
      resourceLimits: { maxOldGenerationSizeMb: workerMemoryMb },
    });
    const started = performance.now();
    this.#workerParses++;
    this.#inFlight++;
    this.#logger?.debug({ document: task.path, bytes: task.bytes.byteLength }, 'parsing a document in a worker thread');
    let outcome: ParseOutcome;
    try {
      outcome = await this.#pool.run(task, { signal: AbortSignal.timeout(parseTimeoutMs) });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.name === 'AbortError') {
        this.#timeouts++;
        this.#logger?.warn({ document: task.path, bytes: task.bytes.byteLength, parseTimeoutMs }, 'document parse stopped: documents.parseTimeoutMs reached');
        throw limitError({ document: task.path }, 'parseTimeoutMs', parseTimeoutMs, 'the time to parse (waiting for a free worker included)', '(the worker was stopped)');
      }
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.#outOfMemory++;
        this.#logger?.warn({ document: task.path, bytes: task.bytes.byteLength, workerMemoryMb }, 'document parse stopped: the worker ran out of memory (documents.workerMemoryMb)');
        throw limitError({ document: task.path }, 'workerMemoryMb', workerMemoryMb, 'the memory to parse', '(the worker ran out of memory and was stopped)');
      }
      throw err;
    } finally {
      this.#inFlight--;
    }
    this.#logger?.debug({ document: task.path, bytes: task.bytes.byteLength, ok: outcome.ok, durationMs: Math.round(performance.now() - started) }, 'parsed a document in a worker thread');
    if (!outcome.ok) throw rebuildError(outcome.error);
    return outcome.document;
  }

  /** Stops the worker threads (a parse in progress is rejected). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }
}
