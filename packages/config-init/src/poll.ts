/**
 * One round of long-polls (SPEC §5.1) for `watch` and `exec --watch`: every target (the
 * configuration, the file list, the template list) is asked at once with `wait=` and its
 * `If-None-Match`, each on its own connection. The round ends at the first answer that is
 * not a 304 (a change, or a failure), or when every target answered 304.
 *
 * Classification reuses the fetch's (`retry.ts`): transport failures, 5xx and 429 are
 * retryable (with `Retry-After`), other 4xx and certificate problems are final (the watcher
 * reports them and backs off all the same: a fix in Git or in the policy may come).
 */
import { FetchError } from './errors.js';
import { problemOf, header } from './response.js';
import { classifyTransportError, isRetryableStatus, parseRetryAfter } from './retry.js';
import { TlsClient, type TlsFiles, type TlsMaterial } from './transport.js';
import { withWait } from './urls.js';

/** One resource to watch. */
export interface PollTarget {
  /** What it is, for logs (`configuration`, `file list`, `template list`). */
  readonly what: string;
  /** Its URL, without `wait`. */
  readonly url: URL;
  readonly accept: string;
  /** The ETag of the published answer. */
  readonly etag: string;
}

/** How a round ended. */
export type PollOutcome =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'changed'; readonly what: string }
  | { readonly kind: 'failed'; readonly what: string; readonly cause: string; readonly final: boolean; readonly retryAfterMs?: number | undefined }
  | { readonly kind: 'stopped' };

/** What a round needs. */
export interface PollOptions {
  readonly tls: TlsMaterial;
  readonly tlsFiles?: TlsFiles | undefined;
  /** `wait=` of each request, ms. */
  readonly waitMs: number;
  /** Per-attempt timeout of the fetch (ms): added to the wait for each request's own timeout. */
  readonly timeoutMs: number;
  readonly now: () => number;
  /** Ends the round at once with `stopped`. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Long-polls every target once.
 * @returns `changed` (the first target whose answer is not a 304), `unchanged` (every one
 *   answered 304), `failed`, or `stopped`; never rejects
 */
export function pollOnce(targets: readonly PollTarget[], opts: PollOptions): Promise<PollOutcome> {
  return new Promise((resolve) => {
    const clients: TlsClient[] = [];
    let settled = false;
    let unchanged = 0;
    const finish = (outcome: PollOutcome): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      for (const c of clients) c.close();
      resolve(outcome);
    };
    const onAbort = (): void => finish({ kind: 'stopped' });
    if (opts.signal?.aborted === true) return finish({ kind: 'stopped' });
    opts.signal?.addEventListener('abort', onAbort);
    for (const t of targets) {
      let client: TlsClient;
      try {
        client = new TlsClient({ initial: opts.tls, files: opts.tlsFiles });
      } catch (err) {
        return finish({ kind: 'failed', what: t.what, cause: err instanceof Error ? err.message : String(err), final: true });
      }
      clients.push(client);
      void client.request(withWait(t.url, opts.waitMs), t.accept, opts.waitMs + opts.timeoutMs + 5000, { 'if-none-match': t.etag }).then((outcome) => {
        if (settled) return;
        if ('failure' in outcome) {
          const c = classifyTransportError(outcome.failure);
          if (c instanceof FetchError) return finish({ kind: 'failed', what: t.what, cause: c.message, final: true });
          return finish({ kind: 'failed', what: t.what, cause: c.cause, final: false });
        }
        const { res } = outcome;
        if (res.status === 304) {
          unchanged += 1;
          if (unchanged === targets.length) finish({ kind: 'unchanged' });
          return;
        }
        if (res.status === 200) return finish({ kind: 'changed', what: t.what });
        const p = problemOf(res);
        const cause = `HTTP ${res.status}${p.code ? ` ${p.code}` : ''}${p.text ? `: ${p.text}` : ''}`;
        finish({ kind: 'failed', what: t.what, cause, final: !isRetryableStatus(res.status), retryAfterMs: parseRetryAfter(header(res.headers, 'retry-after'), opts.now()) });
      });
    }
    if (targets.length === 0) finish({ kind: 'unchanged' });
  });
}
