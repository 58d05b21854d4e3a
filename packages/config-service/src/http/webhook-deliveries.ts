/**
 * Webhook deliveries seen recently, so that the same delivery sent twice (a Git host's
 * retry or a "Redeliver" click) starts one fetch, not two (issue 7). Bounded memory: an
 * LRU of at most {@link MAX_DELIVERIES} ids, each forgotten after the window.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache, type Perf } from 'lru-cache';

/** Most delivery ids remembered at once; the least recently seen are forgotten first. */
export const MAX_DELIVERIES = 10_000;

/**
 * Headers that carry a delivery's id, per webhook style, in the order looked for:
 * - GitHub: `X-GitHub-Delivery` (GitHub docs, "Webhook events and payloads": a GUID to
 *   identify the delivery; a redelivery keeps it);
 * - Gitea / Forgejo: `X-Gitea-Delivery` (Gitea also sends the same id as `X-GitHub-Delivery`);
 * - GitLab: `Idempotency-Key` ("a unique ID that remains consistent across webhook retries",
 *   GitLab docs, "Webhooks", delivery headers), else `X-Gitlab-Event-UUID`.
 */
export const DELIVERY_HEADERS = {
  github: ['x-github-delivery'],
  gitea: ['x-gitea-delivery', 'x-github-delivery'],
  gitlab: ['idempotency-key', 'x-gitlab-event-uuid'],
} as const satisfies Record<string, readonly string[]>;

/** A delivery id worth remembering: printable ASCII without spaces, at most 128 characters. */
const DELIVERY_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The delivery id of a request, from the first of its style's {@link DELIVERY_HEADERS}
 * present.
 * @returns the id, or `undefined` when there is none or it is not printable or too long
 *   (such a delivery is not deduplicated).
 */
export function deliveryId(style: keyof typeof DELIVERY_HEADERS, headers: IncomingHttpHeaders): string | undefined {
  for (const name of DELIVERY_HEADERS[style]) {
    const v = headers[name];
    if (v === undefined) continue;
    return typeof v === 'string' && DELIVERY_ID.test(v) ? v : undefined;
  }
  return undefined;
}

/** Options of {@link DeliveryLog}. */
export interface DeliveryLogOptions {
  /** How long a delivery id is remembered, ms; 0 remembers nothing. */
  readonly windowMs: number;
  /** Most ids remembered (default {@link MAX_DELIVERIES}). */
  readonly max?: number;
  /** Clock (tests). */
  readonly perf?: Perf;
}

/** The delivery ids seen within a window. */
export class DeliveryLog {
  readonly #seen: LRUCache<string, number> | undefined;
  readonly #perf: Perf;

  constructor(options: DeliveryLogOptions) {
    this.#perf = options.perf ?? performance;
    this.#seen =
      options.windowMs > 0 ? new LRUCache<string, number>({ max: options.max ?? MAX_DELIVERIES, ttl: options.windowMs, ttlResolution: 0, perf: this.#perf, updateAgeOnGet: false }) : undefined;
  }

  /**
   * Records a delivery and tells whether it was already seen within the window. Checking
   * and recording is one synchronous step, so two copies arriving together are told apart.
   *
   * @param key - the delivery id, qualified by whatever must keep two ids apart (the repository).
   * @returns `true` for a duplicate (the window is not extended), `false` for a first
   *   sighting (now recorded).
   */
  seen(key: string): boolean {
    if (this.#seen === undefined) return false;
    if (this.#seen.has(key)) return true;
    this.#seen.set(key, this.#perf.now());
    return false;
  }
}
