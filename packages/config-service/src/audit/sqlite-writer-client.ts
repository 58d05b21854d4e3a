/**
 * The SQLite store's side of its writer thread (`sqlite-writer.ts`): starts the thread
 * when the first request needs it (a store that is only read, as by `audit verify`, never
 * starts one), sends requests and matches their answers, keeps the thread from holding the
 * process open while nothing waits for it, and restarts it after it died (every request
 * in flight then fails).
 */
import { Worker } from 'node:worker_threads';
import type { WriterData, WriterReply, WriterRequest, WriterResult } from './sqlite-protocol.js';
import type { AuditLogger } from './types.js';

/** A request sent to the writer and not answered yet. */
interface InFlight {
  resolve: (value: WriterResult) => void;
  reject: (err: Error) => void;
}

/** Talks to one writer thread. */
export class WriterClient {
  readonly #data: WriterData;
  readonly #logger: AuditLogger;
  #worker: Worker | undefined;
  readonly #inFlight = new Map<number, InFlight>();
  #nextId = 1;

  constructor(data: WriterData, logger: AuditLogger) {
    this.#data = data;
    this.#logger = logger;
  }

  /**
   * Sends one request (its `id` is replaced); resolves with the answer.
   * @throws (rejects) the writer's error (SQLite's `code` kept), or an Error when the thread died.
   */
  send(req: WriterRequest): Promise<WriterResult> {
    const worker = this.#writer();
    const id = this.#nextId++;
    return new Promise<WriterResult>((resolve, reject) => {
      this.#inFlight.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...req, id });
    });
  }

  /** Closes the writer's connection and stops the thread, when one runs. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    try {
      await this.send({ op: 'close', id: 0 });
    } catch (err) {
      this.#logger.error({ err }, 'audit store close failed');
    }
    await worker.terminate();
  }

  #writer(): Worker {
    if (this.#worker) return this.#worker;
    const worker = spawnWriter(this.#data);
    worker.on('message', (reply: WriterReply) => {
      const op = this.#inFlight.get(reply.id);
      if (!op) return;
      this.#inFlight.delete(reply.id);
      if (this.#inFlight.size === 0) worker.unref();
      if (reply.ok) op.resolve(reply.value);
      else op.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }, reply.error.code !== undefined && { code: reply.error.code }));
    });
    const lost = (err: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      for (const op of this.#inFlight.values()) op.reject(err);
      this.#inFlight.clear();
    };
    worker.on('error', (err) => {
      this.#logger.error({ err }, 'audit store writer thread failed; it is restarted at the next write');
      lost(err);
    });
    worker.on('exit', (code) => lost(new Error(`the audit store writer thread exited (code ${code})`)));
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}

/**
 * Starts the writer thread: `sqlite-writer.js` beside this module. When the service runs
 * from its TypeScript sources (its own unit tests), the thread first registers `tsx` (a
 * development dependency) so it can load `sqlite-writer.ts`.
 */
function spawnWriter(workerData: WriterData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./sqlite-writer.js', import.meta.url), { workerData });
  const entry = JSON.stringify(new URL('./sqlite-writer.ts', import.meta.url).href);
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${entry}); })`, { eval: true, workerData });
}
